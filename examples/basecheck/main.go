// basecheck proves that the static base image gives a static binary what it needs at run time:
// a CA bundle that verifies real certificate chains, time zone data, a user database and a
// writable /tmp. It prints one line per check ("ok" or "FAIL") and exits 1 if any check failed.
//
// Build it with CGO_ENABLED=0 and without the time/tzdata package or the timetzdata tag, so that
// os/user reads /etc/passwd and /etc/group and time reads /usr/share/zoneinfo, as they would in
// any pure-Go program.
package main

import (
	"bytes"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"
)

const (
	caBundle     = "/etc/ssl/certs/ca-certificates.crt"
	zoneName     = "America/New_York"
	zoneInfoFile = "/usr/share/zoneinfo/" + zoneName
	tmpDir       = "/tmp"
)

// Let's Encrypt's R3 intermediate, issued by ISRG Root X1 (which Alpine's ca-certificates bundle
// carries): https://letsencrypt.org/certs/lets-encrypt-r3.pem, SHA-256 fingerprint
// 67:AD:D1:16:6B:02:0A:E6:1B:8F:5F:C9:68:13:C0:4C:2A:A5:89:96:07:96:86:55:72:A3:C7:E7:37:61:3D:FD.
//
//go:embed lets-encrypt-r3.pem
var intermediatePEM []byte

// A fixed instant inside R3's validity (2020-09-04 to 2025-09-15), so the check never expires.
var verifyTime = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

type check struct {
	name string
	run  func() (string, error)
}

func main() {
	checks := []check{
		{"ca-bundle", checkCABundle},
		{"system-pool", checkSystemPool},
		{"empty-pool", checkEmptyPool},
		{"tzdata", checkTimeZone},
		{"user", checkUser},
		{"tmp", checkTmp},
	}
	failed := 0
	for _, c := range checks {
		detail, err := c.run()
		if err != nil {
			failed++
			fmt.Printf("FAIL %s: %v\n", c.name, err)
			continue
		}
		fmt.Printf("ok   %s: %s\n", c.name, detail)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func intermediate() (*x509.Certificate, error) {
	block, _ := pem.Decode(intermediatePEM)
	if block == nil {
		return nil, errors.New("embedded intermediate is not PEM")
	}
	return x509.ParseCertificate(block.Bytes)
}

// verify checks the intermediate against roots and returns the root it chains to.
func verify(roots *x509.CertPool) (string, error) {
	cert, err := intermediate()
	if err != nil {
		return "", err
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: verifyTime})
	if err != nil {
		return "", err
	}
	chain := chains[0]
	return fmt.Sprintf("%q verifies to %q", cert.Subject.CommonName, chain[len(chain)-1].Subject.CommonName), nil
}

func checkCABundle() (string, error) {
	data, err := os.ReadFile(caBundle)
	if err != nil {
		return "", err
	}
	count := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			count++
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return "", fmt.Errorf("%s has no certificates", caBundle)
	}
	result, err := verify(pool)
	if err != nil {
		return "", fmt.Errorf("%s: %v", caBundle, err)
	}
	return fmt.Sprintf("%s has %d certificates; %s", caBundle, count, result), nil
}

func checkSystemPool() (string, error) {
	source := "SSL_CERT_FILE unset"
	if file, ok := os.LookupEnv("SSL_CERT_FILE"); ok {
		source = "SSL_CERT_FILE=" + file
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		return "", fmt.Errorf("x509.SystemCertPool (%s): %v", source, err)
	}
	result, err := verify(pool)
	if err != nil {
		return "", fmt.Errorf("x509.SystemCertPool (%s): %v", source, err)
	}
	return fmt.Sprintf("x509.SystemCertPool (%s): %s", source, result), nil
}

// checkEmptyPool shows the verification above is real: without the roots, it must fail.
func checkEmptyPool() (string, error) {
	_, err := verify(x509.NewCertPool())
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return "verification without roots fails as it should (unknown authority)", nil
	}
	if err == nil {
		return "", errors.New("the intermediate verified against an empty pool")
	}
	return "", fmt.Errorf("expected an unknown-authority error, got: %v", err)
}

func checkTimeZone() (string, error) {
	// ZONEINFO would make time look elsewhere than the image's /usr/share/zoneinfo.
	os.Unsetenv("ZONEINFO")
	data, err := os.ReadFile(zoneInfoFile)
	if err != nil {
		return "", err
	}
	fromFile, err := time.LoadLocationFromTZData(zoneName, data)
	if err != nil {
		return "", fmt.Errorf("%s: %v", zoneInfoFile, err)
	}
	loc, err := time.LoadLocation(zoneName)
	if err != nil {
		return "", err
	}
	summer := time.Date(2024, time.July, 1, 12, 0, 0, 0, time.UTC)
	winter := time.Date(2024, time.January, 15, 12, 0, 0, 0, time.UTC)
	for _, t := range []time.Time{summer, winter} {
		if a, b := t.In(loc).Format("MST -07:00"), t.In(fromFile).Format("MST -07:00"); a != b {
			return "", fmt.Errorf("time.LoadLocation gives %s on %s, %s gives %s", a, t.Format("2006-01-02"), zoneInfoFile, b)
		}
	}
	return fmt.Sprintf("%s is %s on %s and %s on %s", zoneName,
		summer.In(loc).Format("MST -07:00"), summer.Format("2006-01-02"),
		winter.In(loc).Format("MST -07:00"), winter.Format("2006-01-02")), nil
}

func checkUser() (string, error) {
	uid, gid := strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid())
	u, err := user.LookupId(uid)
	if err != nil {
		return "", fmt.Errorf("uid %s is not in /etc/passwd: %v", uid, err)
	}
	g, err := user.LookupGroupId(gid)
	if err != nil {
		return "", fmt.Errorf("gid %s is not in /etc/group: %v", gid, err)
	}
	return fmt.Sprintf("uid %s is %q, gid %s is %q, home %s", uid, u.Username, gid, g.Name, u.HomeDir), nil
}

func checkTmp() (string, error) {
	f, err := os.CreateTemp(tmpDir, "basecheck-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	want := []byte("basecheck\n")
	if _, err := f.Write(want); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		return "", err
	}
	if !bytes.Equal(got, want) {
		return "", fmt.Errorf("%s read back %q, wrote %q", f.Name(), got, want)
	}
	return tmpDir + " is writable", nil
}

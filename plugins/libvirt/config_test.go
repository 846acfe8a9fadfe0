package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

func TestConfigURIs(t *testing.T) {
	cases := []struct {
		name, uri                       string
		transport, socket, addr, remote string
	}{
		{"the default is the local system socket", "", "unix", defaultSocket, "", "qemu:///system"},
		{"a local URI without transport is unix", "qemu:///system", "unix", defaultSocket, "", "qemu:///system"},
		{"socket= names another socket", "qemu+unix:///system?socket=/run/libvirt/libvirt-sock-ro", "unix", "/run/libvirt/libvirt-sock-ro", "", "qemu:///system"},
		{"the test driver opens its file on the daemon", "test+unix:///srv/node.xml", "unix", defaultSocket, "", "test:///srv/node.xml"},
		{"test:///default", "test:///default", "unix", defaultSocket, "", "test:///default"},
		{"tls with the default port", "qemu+tls://hv1.example/system", "tls", "", "hv1.example:16514", "qemu:///system"},
		{"tls with a port", "qemu+tls://127.0.0.1:16600/system", "tls", "", "127.0.0.1:16600", "qemu:///system"},
		{"a host without transport is tls", "qemu://hv1.example/system", "tls", "", "hv1.example:16514", "qemu:///system"},
		{"an IPv6 host", "qemu+tls://[::1]:16600/system", "tls", "", "[::1]:16600", "qemu:///system"},
	}
	dir := tlsFiles(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := map[string]any{}
			if c.uri != "" {
				cfg["uri"] = c.uri
			}
			if c.transport == "tls" {
				cfg["ca_file"], cfg["cert_file"], cfg["key_file"] = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
			}
			raw, _ := json.Marshal(cfg)
			tg, err := parseConfig(raw)
			if err != nil {
				t.Fatal(err)
			}
			if tg.transport != c.transport || tg.socket != c.socket || tg.addr != c.addr || tg.remote != c.remote {
				t.Errorf("got transport %q socket %q addr %q remote %q", tg.transport, tg.socket, tg.addr, tg.remote)
			}
			if tg.connectTimeout != defaultConnectTimeout {
				t.Errorf("connect timeout %v", tg.connectTimeout)
			}
			if err := checkFiles(tg); err != nil {
				t.Errorf("checkFiles: %v", err)
			}
		})
	}
}

func TestConfigSessionSocket(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	tg, err := parseConfig(json.RawMessage(`{"uri": "qemu:///session"}`))
	if err != nil {
		t.Fatal(err)
	}
	if tg.socket != "/run/user/1000/libvirt/libvirt-sock" {
		t.Errorf("session socket %q", tg.socket)
	}
}

func TestConfigPKIPath(t *testing.T) {
	dir := tlsFiles(t)
	for _, n := range []string{"ca", "client", "client-key"} {
		to := map[string]string{"ca": "cacert.pem", "client": "clientcert.pem", "client-key": "clientkey.pem"}[n]
		if err := os.Rename(filepath.Join(dir, n+".pem"), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	tg, err := parseConfig(json.RawMessage(`{"uri": "qemu+tls://127.0.0.1/system?pkipath=` + dir + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if tg.caFile != filepath.Join(dir, "cacert.pem") || tg.keyFile != filepath.Join(dir, "clientkey.pem") {
		t.Errorf("files %q %q %q", tg.caFile, tg.certFile, tg.keyFile)
	}
	if err := checkFiles(tg); err != nil {
		t.Error(err)
	}
}

func TestConfigKeyFromTheEnvironment(t *testing.T) {
	dir := tlsFiles(t)
	key, err := os.ReadFile(filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_LIBVIRT_KEY", string(key))
	raw := json.RawMessage(`{"uri": "qemu+tls://127.0.0.1/system", "ca_file": "` + filepath.Join(dir, "ca.pem") +
		`", "cert_file": "` + filepath.Join(dir, "client.pem") + `", "key_env": "TEST_LIBVIRT_KEY"}`)
	if err := (&source{}).Validate(testContext(t), raw); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := tlsFiles(t)
	ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	t.Setenv("TEST_LIBVIRT_KEY", "not a key")
	cases := []struct {
		name, config, field, want string
	}{
		{"an unknown attribute", `{"url": "qemu:///system"}`, "url", "unknown attribute"},
		{"the daemon's timeout is not ours", `{"timeout": "5s"}`, "timeout", "unknown attribute"},
		{"a wrong type", `{"domains": "web-1"}`, "domains", "must be a list"},
		{"a URI that is no URI", `{"uri": "::"}`, "uri", "is not a URI"},
		{"a URI without a scheme", `{"uri": "/var/run/libvirt/libvirt-sock"}`, "uri", "is not a libvirt URI"},
		{"ssh", `{"uri": "qemu+ssh://root@hv1/system"}`, "uri", "user name"},
		{"libssh", `{"uri": "qemu+libssh2://hv1/system"}`, "uri", `transport "libssh2" is not supported`},
		{"plain tcp", `{"uri": "qemu+tcp://hv1/system"}`, "uri", "neither encrypted nor authenticated"},
		{"a unix URI with a host", `{"uri": "qemu+unix://hv1/system"}`, "uri", "names no host"},
		{"a relative socket", `{"uri": "qemu+unix:///system?socket=libvirt-sock"}`, "uri", "absolute path"},
		{"an unknown URI parameter", `{"uri": "qemu:///system?no_verify=1"}`, "uri", `parameter "no_verify" is not supported`},
		{"tls without a host", `{"uri": "qemu+tls:///system"}`, "uri", "names the daemon's host"},
		{"a bad driver", `{"uri": "q.emu+unix:///system"}`, "uri", "not a libvirt driver"},
		{"a bad connect_timeout", `{"connect_timeout": "soon"}`, "connect_timeout", "not a duration"},
		{"a zero connect_timeout", `{"connect_timeout": "0s"}`, "connect_timeout", "longer than 0s"},
		{"a bad pattern", `{"domains": ["web-["]}`, "domains", "not a valid pattern"},
		{"an empty name", `{"domains": [""]}`, "domains", "matches no domain"},
		{"an unknown address source", `{"address_sources": ["dhcp"]}`, "address_sources", "not lease, agent or arp"},
		{"an address source twice", `{"address_sources": ["lease", "lease"]}`, "address_sources", "listed twice"},
		{"TLS files on a unix URI", `{"ca_file": "` + ca + `"}`, "ca_file", "applies to a tls URI only"},
		{"a missing CA file", `{"uri": "qemu+tls://hv1/system", "ca_file": "/nonexistent/ca.pem", "cert_file": "` + cert + `", "key_file": "` + key + `"}`, "ca_file", "no such file"},
		{"a CA file that holds no certificate", `{"uri": "qemu+tls://hv1/system", "ca_file": "` + key + `", "cert_file": "` + cert + `", "key_file": "` + key + `"}`, "ca_file", "holds no PEM certificate"},
		{"a missing key file", `{"uri": "qemu+tls://hv1/system", "ca_file": "` + ca + `", "cert_file": "` + cert + `", "key_file": "/nonexistent/key.pem"}`, "key_file", "no such file"},
		{"key_file and key_env", `{"uri": "qemu+tls://hv1/system", "ca_file": "` + ca + `", "cert_file": "` + cert + `", "key_file": "` + key + `", "key_env": "TEST_LIBVIRT_KEY"}`, "key_file", "not both"},
		{"an unset key_env", `{"uri": "qemu+tls://hv1/system", "ca_file": "` + ca + `", "cert_file": "` + cert + `", "key_env": "TEST_LIBVIRT_NO_SUCH_VAR"}`, "key_env", "is not set"},
		{"a key that does not load", `{"uri": "qemu+tls://hv1/system", "ca_file": "` + ca + `", "cert_file": "` + cert + `", "key_env": "TEST_LIBVIRT_KEY"}`, "key_env", "do not load"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := (&source{}).Validate(testContext(t), json.RawMessage(c.config))
			var verr *sdk.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("want field errors, got %v", err)
			}
			for _, f := range verr.Fields {
				if f.Field == c.field && strings.Contains(f.Message, c.want) {
					if strings.Contains(err.Error(), "not a key") {
						t.Errorf("the error shows the secret: %v", err)
					}
					return
				}
			}
			t.Errorf("got %v, want %s: ...%s...", err, c.field, c.want)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tg, err := parseConfig(json.RawMessage(`{"connect_timeout": "2s"}`))
	if err != nil {
		t.Fatal(err)
	}
	if tg.connectTimeout != 2*time.Second || len(tg.addressSources) != 2 || tg.display != DefaultURI {
		t.Errorf("got %+v", tg)
	}
}

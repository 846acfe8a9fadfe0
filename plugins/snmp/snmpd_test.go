package snmp

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/internal/testnet"
	"github.com/sollwert/sollwert/internal/testsnmpd"
	"github.com/sollwert/sollwert/sdk"
)

// The tests run net-snmp's real snmpd in a network namespace of their own
// (internal/testsnmpd). Nothing outside 198.18.0.0/15 is contacted.

const (
	community    = testsnmpd.Community
	v3User       = testsnmpd.User
	v3Auth       = testsnmpd.AuthKey
	v3Priv       = testsnmpd.PrivKey
	neighbourIP  = testsnmpd.NeighbourIP
	neighbourMAC = testsnmpd.NeighbourMAC
)

type agent struct {
	*testsnmpd.Agent
	addr netip.Addr
	port int
	net  *testnet.Net
}

func startAgent(t *testing.T, sysDescr string) *agent {
	a := testsnmpd.Start(t, sysDescr)
	return &agent{Agent: a, addr: a.Addr, port: a.Port, net: a.Net}
}

func (a *agent) stop() { a.Stop() }

func secretFile(t *testing.T, value string) string {
	return testsnmpd.SecretFile(t, t.TempDir(), value)
}

func (a *agent) v2c(t *testing.T, comm string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"targets": []string{a.addr.String()}, "port": a.port, "community_file": secretFile(t, comm), "timeout": "300ms", "retries": 0})
	return b
}

// v3 reads the keys from files; v3env from the environment.
func (a *agent) v3(t *testing.T, auth, priv string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"targets": []string{a.addr.String()}, "port": a.port, "version": "3", "user": v3User,
		"auth_protocol": "sha", "auth_key_file": secretFile(t, auth), "priv_protocol": "aes", "priv_key_file": secretFile(t, priv),
		"timeout": "300ms", "retries": 0})
	return b
}

func (a *agent) v3env(t *testing.T, auth, priv string) json.RawMessage {
	t.Setenv("SOLLWERT_TEST_AUTH", auth)
	t.Setenv("SOLLWERT_TEST_PRIV", priv)
	b, _ := json.Marshal(map[string]any{"targets": []string{a.addr.String()}, "port": a.port, "version": "3", "user": v3User,
		"auth_protocol": "sha", "auth_key_env": "SOLLWERT_TEST_AUTH", "priv_protocol": "aes", "priv_key_env": "SOLLWERT_TEST_PRIV",
		"timeout": "300ms", "retries": 0})
	return b
}

func discover(t *testing.T, config json.RawMessage) ([]sdk.Observation, sdk.Result, error) {
	t.Helper()
	var obs []sdk.Observation
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := New(nil).Discover(ctx, sdk.DiscoverRequest{Config: config}, sdk.EmitterFunc(func(_ context.Context, b []sdk.Observation) error {
		obs = append(obs, b...)
		return nil
	}))
	return obs, res, err
}

func TestWalksRealSnmpdOverV2cAndV3(t *testing.T) {
	a := startAgent(t, "sollwert test switch")
	for name, config := range map[string]json.RawMessage{"v2c": a.v2c(t, community), "v3 authPriv, keys from files": a.v3(t, v3Auth, v3Priv), "v3 authPriv, keys from the environment": a.v3env(t, v3Auth, v3Priv),
		"v3 authNoPriv, SHA-256": func() json.RawMessage {
			b, _ := json.Marshal(map[string]any{"targets": []string{a.addr.String()}, "port": a.port, "version": "3", "user": testsnmpd.AuthOnlyUser,
				"auth_protocol": "sha256", "auth_key_file": secretFile(t, v3Auth), "timeout": "300ms", "retries": 0})
			return b
		}()} {
		t.Run(name, func(t *testing.T) {
			obs, res, err := discover(t, config)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) != 0 || len(res.Scope.Prefixes) != 0 {
				t.Fatalf("result %+v", res)
			}
			self, neighbour := find(obs, a.addr.String()), find(obs, neighbourIP)
			if self == nil || neighbour == nil {
				t.Fatalf("want the agent and its neighbour, got %+v", obs)
			}
			for k, want := range map[string]string{
				"sys_descr": "sollwert test switch", "sys_name": "switch-1", "sys_location": "rack 7",
				"sys_contact": "noc@example.test", "sys_object_id": ".1.3.6.1.4.1.8072.3.2.10",
				"if.lo.oper_status": "up", "if.lo.admin_status": "up", "if.lo.type": "24",
				"if." + a.net.PeerLink + ".oper_status": "up",
			} {
				if got := self.Facts[k]; got != want {
					t.Errorf("fact %s = %q, want %q", k, got, want)
				}
			}
			if self.Facts["if."+a.net.PeerLink+".mac"] == "" || self.Hostnames[0] != "switch-1" || self.Source != "" {
				t.Errorf("agent: %+v", self)
			}
			if neighbour.Source != NeighbourSource || !hasAddr(neighbour, neighbourMAC) ||
				neighbour.Facts["arp_seen_by."+a.addr.String()] != a.net.PeerLink {
				t.Errorf("neighbour: %+v", neighbour)
			}
			for _, o := range obs {
				if err := o.Validate(); err != nil {
					t.Errorf("the host would reject %+v: %v", o, err)
				}
			}
		})
	}
}

func find(obs []sdk.Observation, addr string) *sdk.Observation {
	for i := range obs {
		if obs[i].Addresses[0].Addr == addr {
			return &obs[i]
		}
	}
	return nil
}

func TestBadCredentialsGiveDistinctErrors(t *testing.T) {
	a := startAgent(t, "sollwert test switch")
	cases := []struct {
		name   string
		config json.RawMessage
		is     error
		want   string
	}{
		{"wrong community", a.v2c(t, "not-the-community"), ErrCommunity, "the agent answers SNMP, but not to the configured community"},
		{"wrong auth key", a.v3(t, "wrong-passphrase", v3Priv), ErrWrongAuthKey, `wrong SNMPv3 authentication key for user "sollwert"`},
		{"wrong priv key", a.v3(t, v3Auth, "wrong-passphrase"), ErrWrongPrivKey, `wrong SNMPv3 privacy key for user "sollwert"`},
		{"unknown user", func() json.RawMessage {
			var m map[string]any
			_ = json.Unmarshal(a.v3(t, v3Auth, v3Priv), &m)
			m["user"] = "mallory"
			b, _ := json.Marshal(m)
			return b
		}(), ErrUnknownUser, `unknown SNMPv3 user "mallory"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs, _, err := discover(t, c.config)
			if err == nil || len(obs) != 0 {
				t.Fatalf("got %d observations, error %v", len(obs), err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", err, c.is)
			}
			for _, s := range []string{community, v3Auth, v3Priv, "wrong-passphrase", "not-the-community"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
	// A host without an agent says so (port unreachable); an address where
	// nothing answers at all (a blackhole route in the namespace) is silent.
	a.stop()
	_, _, err := discover(t, a.v2c(t, community))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "nothing listens on udp/16161") {
		t.Errorf("stopped agent: %v", err)
	}
	a.net.Route(t, a.Spare)
	a.net.Exec(t, "ip", "route", "add", "blackhole", a.Spare.String())
	nobody := a.Spare.Addr().Next()
	silent := strings.Replace(string(a.v2c(t, community)), a.addr.String(), nobody.String(), 1)
	_, _, err = discover(t, json.RawMessage(silent))
	if !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), nobody.String()+": no answer within 300ms × 1 tries") {
		t.Errorf("silent address: %v", err)
	}
}

func TestOneBadTargetDoesNotFailTheOthers(t *testing.T) {
	a := startAgent(t, "sollwert test switch")
	b, _ := json.Marshal(map[string]any{"targets": []string{a.addr.String(), a.net.Host.String()}, "port": a.port,
		"community_file": secretFile(t, community), "timeout": "300ms", "retries": 0})
	obs, res, err := discover(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if find(obs, a.addr.String()) == nil || len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], a.net.Host.String()+": ") {
		t.Fatalf("observations %d, warnings %q", len(obs), res.Warnings)
	}
}

func discoverRequest(config json.RawMessage) sdk.DiscoverRequest {
	return sdk.DiscoverRequest{Config: config}
}

func emitCount(n *int) sdk.Emitter {
	return sdk.EmitterFunc(func(_ context.Context, b []sdk.Observation) error {
		*n += len(b)
		return nil
	})
}

package identity

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// caString is how a config file spells a CA key.
func caString(t testing.TB, key crypto.PubKey) string {
	t.Helper()
	raw, err := crypto.MarshalPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// configText fills CA1, CA2 and CA3 in a config template with three distinct
// Ed25519 CA keys.
func configText(t testing.TB, tmpl string) string {
	t.Helper()
	return strings.NewReplacer(
		"CA1", caString(t, mustKey(t, 1).GetPublic()),
		"CA2", caString(t, mustKey(t, 2).GetPublic()),
		"CA3", caString(t, mustKey(t, 3).GetPublic()),
	).Replace(tmpl)
}

const validConfig = `network: fabnet
orgs:
  - name: Org1
    ca: CA1
  - name: Org2
    ca: CA2
  - name: Org3
    ca: CA3
channels:
  - name: ch0
    orgs: [Org1, Org2]
    publishers: [Org1]
  - name: ch1
    orgs: [Org2, Org3]
`

func TestParseNetworkValid(t *testing.T) {
	n, err := ParseNetwork("network.yaml", []byte(configText(t, validConfig)))
	if err != nil {
		t.Fatal(err)
	}
	if n.Name() != "fabnet" {
		t.Errorf("Name() = %q, want fabnet", n.Name())
	}
	org, ok := n.Org("Org2")
	if !ok || org.Name != "Org2" || !org.CA.Equals(mustKey(t, 2).GetPublic()) {
		t.Errorf("Org(Org2) = %+v, %v; want Org2 with the second CA key", org, ok)
	}
	if _, ok := n.Org("Org9"); ok {
		t.Error("Org(Org9) found an org that is not in the config")
	}
	ch, ok := n.Channel("ch0")
	want := Channel{Name: "ch0", Orgs: []string{"Org1", "Org2"}, Publishers: []string{"Org1"}}
	if !ok || !reflect.DeepEqual(ch, want) {
		t.Errorf("Channel(ch0) = %+v, %v; want %+v", ch, ok, want)
	}
	if _, ok := n.Channel("ch9"); ok {
		t.Error("Channel(ch9) found a channel that is not in the config")
	}
	wantOrgs := map[string][]string{"ch0": {"Org1", "Org2"}, "ch1": {"Org2", "Org3"}}
	if got := n.ChannelOrgs(); !reflect.DeepEqual(got, wantOrgs) {
		t.Errorf("ChannelOrgs() = %v, want %v", got, wantOrgs)
	}
}

func TestNetworkLookups(t *testing.T) {
	n, _ := testNetwork(t)
	tests := []struct {
		name       string
		org, ch    string
		inChannel  bool
		mayPublish bool
	}{
		{name: "listed publisher", org: "Org1", ch: "ch0", inChannel: true, mayPublish: true},
		{name: "member not listed as publisher", org: "Org2", ch: "ch0", inChannel: true, mayPublish: false},
		{name: "non-member", org: "Org3", ch: "ch0", inChannel: false, mayPublish: false},
		{name: "no publishers listed: every member publishes", org: "Org3", ch: "ch1", inChannel: true, mayPublish: true},
		{name: "no publishers listed: non-member does not", org: "Org1", ch: "ch1", inChannel: false, mayPublish: false},
		{name: "unknown org", org: "Org9", ch: "ch1", inChannel: false, mayPublish: false},
		{name: "unknown channel", org: "Org1", ch: "ch9", inChannel: false, mayPublish: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := n.OrgInChannel(tt.org, tt.ch); got != tt.inChannel {
				t.Errorf("OrgInChannel(%q, %q) = %v, want %v", tt.org, tt.ch, got, tt.inChannel)
			}
			if got := n.MayPublish(tt.org, tt.ch); got != tt.mayPublish {
				t.Errorf("MayPublish(%q, %q) = %v, want %v", tt.org, tt.ch, got, tt.mayPublish)
			}
		})
	}

	channelsOf := map[string][]string{"Org1": {"ch0"}, "Org2": {"ch0", "ch1"}, "Org3": {"ch1"}, "Org9": nil}
	for org, want := range channelsOf {
		if got := n.ChannelsOfOrg(org); !reflect.DeepEqual(got, want) {
			t.Errorf("ChannelsOfOrg(%q) = %v, want %v", org, got, want)
		}
	}
}

func TestNetworkIsImmutable(t *testing.T) {
	spec := NetworkSpec{
		Name:     "fabnet",
		Orgs:     []Org{{Name: "Org1", CA: mustKey(t, 1).GetPublic()}, {Name: "Org2", CA: mustKey(t, 2).GetPublic()}},
		Channels: []Channel{{Name: "ch0", Orgs: []string{"Org1"}}},
	}
	n, err := NewNetwork(spec)
	if err != nil {
		t.Fatal(err)
	}
	// Edit everything a caller holds: the spec passed in and what lookups returned.
	spec.Channels[0].Orgs[0] = "Org2"
	spec.Orgs[0].Name = "Evil"
	ch, _ := n.Channel("ch0")
	ch.Orgs[0] = "Org2"
	n.ChannelOrgs()["ch0"][0] = "Org2"
	n.Channels()[0].Orgs[0] = "Org2"
	n.Spec().Channels[0].Orgs[0] = "Org2"

	if !n.OrgInChannel("Org1", "ch0") || n.OrgInChannel("Org2", "ch0") {
		t.Error("editing a spec or a lookup result changed the network's channel membership")
	}
	if _, ok := n.Org("Org1"); !ok {
		t.Error("editing the spec passed to NewNetwork renamed an org of the network")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		orgs     []string
		channels []Channel
	}{
		{name: "orgs only", orgs: []string{"Org1"}},
		{name: "publishers default and explicit", orgs: []string{"Org1", "Org2", "Org3"}, channels: []Channel{
			{Name: "ch0", Orgs: []string{"Org1", "Org2"}, Publishers: []string{"Org1"}},
			{Name: "ch1", Orgs: []string{"Org2", "Org3"}},
		}},
		{name: "names YAML would misread unquoted", orgs: []string{"yes", "null", "0x1F", "a:b"}, channels: []Channel{
			{Name: "true", Orgs: []string{"yes", "null", "0x1F", "a:b"}, Publishers: []string{"null"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _, err := GenerateNetwork("fabnet", tt.orgs, tt.channels, seeded(7))
			if err != nil {
				t.Fatal(err)
			}
			data, err := n.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseNetwork("network.yaml", data)
			if err != nil {
				t.Fatalf("ParseNetwork(Marshal()) = %v\n%s", err, data)
			}
			if back.Name() != n.Name() {
				t.Errorf("name %q, want %q", back.Name(), n.Name())
			}
			if !reflect.DeepEqual(back.Channels(), n.Channels()) {
				t.Errorf("channels %+v, want %+v", back.Channels(), n.Channels())
			}
			gotOrgs, wantOrgs := back.Orgs(), n.Orgs()
			if len(gotOrgs) != len(wantOrgs) {
				t.Fatalf("%d orgs, want %d", len(gotOrgs), len(wantOrgs))
			}
			for i := range wantOrgs {
				if gotOrgs[i].Name != wantOrgs[i].Name || !gotOrgs[i].CA.Equals(wantOrgs[i].CA) {
					t.Errorf("orgs[%d] = %s, want %s with the same CA", i, gotOrgs[i].Name, wantOrgs[i].Name)
				}
			}
			again, err := back.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(data) {
				t.Errorf("Marshal is not stable across a round trip:\n%s\nthen\n%s", data, again)
			}
		})
	}
}

func TestParseNetworkErrors(t *testing.T) {
	secp, _, err := crypto.GenerateSecp256k1Key(seeded(9))
	if err != nil {
		t.Fatal(err)
	}
	secpCA := caString(t, secp.GetPublic())
	notAKey := base64.StdEncoding.EncodeToString([]byte("not a key"))

	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error: file, line, field, value
	}{
		{
			name: "unknown top-level field",
			yaml: "network: fabnet\ncolour: blue\norgs:\n  - name: Org1\n    ca: CA1\n",
			want: []string{"network.yaml:2: colour: ", `unknown field "colour"`, "known fields: network, orgs, channels"},
		},
		{
			name: "unknown org field",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    cert: CA1\n",
			want: []string{"network.yaml:4: orgs[0].cert: ", `unknown field "cert"`, "known fields: name, ca"},
		},
		{
			name: "unknown channel field",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\nchannels:\n  - name: ch0\n    orgs: [Org1]\n    readers: [Org1]\n",
			want: []string{"network.yaml:8: channels[0].readers: ", `unknown field "readers"`},
		},
		{
			name: "missing network name",
			yaml: "orgs:\n  - name: Org1\n    ca: CA1\n",
			want: []string{"network.yaml: network: missing network name"},
		},
		{
			name: "no orgs",
			yaml: "network: fabnet\n",
			want: []string{"network.yaml: orgs: ", "at least one org"},
		},
		{
			name: "empty org name",
			yaml: "network: fabnet\norgs:\n  - name: \"\"\n    ca: CA1\n",
			want: []string{"network.yaml:3: orgs[0].name: missing org name"},
		},
		{
			name: "org name with a space",
			yaml: "network: fabnet\norgs:\n  - name: Org 1\n    ca: CA1\n",
			want: []string{"network.yaml:3: orgs[0].name: ", `invalid org name "Org 1"`, "white space"},
		},
		{
			name: "duplicate org",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\n  - name: Org1\n    ca: CA2\n",
			want: []string{"network.yaml:5: orgs[1].name: ", `duplicate org "Org1"`, "orgs[0]"},
		},
		{
			name: "missing CA",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n",
			want: []string{"network.yaml:3: orgs[0].ca: ", `missing CA key of org "Org1"`},
		},
		{
			name: "CA not base64",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: '%%%not base64'\n",
			want: []string{"network.yaml:4: orgs[0].ca: ", `"%%%not base64"`, "not base64"},
		},
		{
			name: "CA not a key",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: " + notAKey + "\n",
			want: []string{"network.yaml:4: orgs[0].ca: ", notAKey, "not a libp2p public key"},
		},
		{
			name: "CA of another key type",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: " + secpCA + "\n",
			want: []string{"network.yaml:4: orgs[0].ca: ", `"Org1"`, "Secp256k1, want Ed25519"},
		},
		{
			name: "two orgs share a CA",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\n  - name: Org2\n    ca: CA1\n",
			want: []string{"network.yaml:6: orgs[1].ca: ", `org "Org2" has the same CA key as orgs[0] ("Org1")`},
		},
		{
			name: "empty channel name",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\nchannels:\n  - orgs: [Org1]\n",
			want: []string{"network.yaml:6: channels[0].name: missing channel name"},
		},
		{
			name: "duplicate channel",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\nchannels:\n  - name: ch0\n    orgs: [Org1]\n  - name: ch0\n    orgs: [Org1]\n",
			want: []string{"network.yaml:8: channels[1].name: ", `duplicate channel "ch0"`},
		},
		{
			name: "channel without orgs",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\nchannels:\n  - name: ch0\n",
			want: []string{"network.yaml:6: channels[0].orgs: ", `channel "ch0" needs at least one member org`},
		},
		{
			name: "channel names an unknown org",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\nchannels:\n  - name: ch0\n    orgs: [Org1]\n  - name: ch1\n    orgs: [Org9]\n",
			want: []string{"network.yaml:9: channels[1].orgs[0]: ", `unknown org "Org9"`},
		},
		{
			name: "channel lists an org twice",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\nchannels:\n  - name: ch0\n    orgs: [Org1, Org1]\n",
			want: []string{"channels[0].orgs[1]: ", `org "Org1" listed twice`},
		},
		{
			name: "publisher is an unknown org",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\nchannels:\n  - name: ch0\n    orgs: [Org1]\n    publishers: [Org7]\n",
			want: []string{"network.yaml:8: channels[0].publishers[0]: ", `unknown org "Org7"`},
		},
		{
			name: "publisher is not a member",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\n  - name: Org2\n    ca: CA2\nchannels:\n  - name: ch0\n    orgs: [Org1]\n    publishers: [Org1, Org2]\n",
			want: []string{"network.yaml:10: channels[0].publishers[1]: ", `publisher "Org2" is not a member of channel "ch0"`},
		},
		{
			name: "orgs is a mapping",
			yaml: "network: fabnet\norgs:\n  Org1: CA1\n",
			want: []string{"network.yaml:3: orgs: ", "want a list of orgs, got a mapping"},
		},
		{
			name: "org name is a list",
			yaml: "network: fabnet\norgs:\n  - name: [Org1]\n    ca: CA1\n",
			want: []string{"network.yaml:3: orgs[0].name: ", "want a string, got a list"},
		},
		{
			name: "not YAML",
			yaml: "network: fabnet\norgs: [\n",
			want: []string{"network.yaml:", "invalid YAML"},
		},
		{
			name: "empty file",
			yaml: "# nothing here\n",
			want: []string{"network.yaml: empty file"},
		},
		{
			name: "two documents",
			yaml: "network: fabnet\norgs:\n  - name: Org1\n    ca: CA1\n---\nnetwork: other\n",
			want: []string{"network.yaml:", "more than one YAML document"},
		},
		{
			name: "every mistake is reported",
			yaml: "network: \"\"\norgs:\n  - name: Org1\n    ca: CA1\n    colour: red\nchannels:\n  - name: ch0\n    orgs: [Org8]\n    publishers: [Org9]\n",
			want: []string{
				"network.yaml:1: network: missing network name",
				"network.yaml:5: orgs[0].colour: unknown field \"colour\"",
				"network.yaml:8: channels[0].orgs[0]: unknown org \"Org8\"",
				"network.yaml:9: channels[0].publishers[0]: unknown org \"Org9\"",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNetwork("network.yaml", []byte(configText(t, tt.yaml)))
			if err == nil {
				t.Fatalf("ParseNetwork accepted an invalid config; network %q", n.Name())
			}
			assertContainsAll(t, err.Error(), tt.want...)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != "network.yaml" {
				t.Errorf("error %q is not a *ConfigError naming the file", err)
			}
		})
	}
}

func TestSpecValidateWithoutFile(t *testing.T) {
	err := NetworkSpec{
		Name:     "fabnet",
		Orgs:     []Org{{Name: "Org1", CA: mustKey(t, 1).GetPublic()}},
		Channels: []Channel{{Name: "ch0", Orgs: []string{"Org1"}}, {Name: "ch1", Orgs: []string{"Org9"}}},
	}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a channel naming an unknown org")
	}
	if got, want := err.Error(), `channels[1].orgs[0]: unknown org "Org9"`; got != want {
		t.Errorf("Validate() = %q, want %q", got, want)
	}
	if _, err := NewNetwork(NetworkSpec{}); err == nil {
		t.Error("NewNetwork accepted an empty spec")
	}
}

func TestWriteAndLoadNetwork(t *testing.T) {
	n, _ := testNetwork(t)
	path := filepath.Join(t.TempDir(), "network.yaml")
	if err := WriteNetwork(path, n, CreateOnly); err != nil {
		t.Fatal(err)
	}
	back, err := LoadNetwork(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.ChannelOrgs(), n.ChannelOrgs()) {
		t.Errorf("loaded channels %v, want %v", back.ChannelOrgs(), n.ChannelOrgs())
	}
	if err := WriteNetwork(path, n, CreateOnly); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteNetwork with CreateOnly = %v, want fs.ErrExist", err)
	}
	if err := WriteNetwork(path, n, Replace); err != nil {
		t.Errorf("WriteNetwork with Replace = %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("network: fabnet\nnope: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadNetwork(bad)
	if err == nil {
		t.Fatal("LoadNetwork accepted an unknown field")
	}
	assertContainsAll(t, err.Error(), bad+":2: nope: ", `unknown field "nope"`)

	_, err = LoadNetwork(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadNetwork of a missing file = %v, want fs.ErrNotExist", err)
	}
}

func TestGenerateNetworkIsReproducible(t *testing.T) {
	chans := []Channel{{Name: "ch0", Orgs: []string{"Org1", "Org2"}}}
	a, aKeys, err := GenerateNetwork("fabnet", []string{"Org1", "Org2"}, chans, seeded(5))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := GenerateNetwork("fabnet", []string{"Org1", "Org2"}, chans, seeded(5))
	if err != nil {
		t.Fatal(err)
	}
	am, _ := a.Marshal()
	bm, _ := b.Marshal()
	if string(am) != string(bm) {
		t.Error("the same seed gave two different networks")
	}
	for _, org := range a.Orgs() {
		if !aKeys[org.Name].GetPublic().Equals(org.CA) {
			t.Errorf("CA key returned for %s does not match the network's CA", org.Name)
		}
	}
	_, _, err = GenerateNetwork("fabnet", []string{"Org1"}, []Channel{{Name: "ch0", Orgs: []string{"Org2"}}}, nil)
	if err == nil {
		t.Fatal("GenerateNetwork accepted a channel naming an unknown org")
	}
	assertContainsAll(t, err.Error(), `channels[0].orgs[0]: unknown org "Org2"`)
}

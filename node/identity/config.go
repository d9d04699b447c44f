package identity

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"go.yaml.in/yaml/v3"
)

// MaxConfigSize caps a network config file. Real configs are a few KiB; the
// cap keeps a wrong path (a log, a disk image) from being read into memory.
const MaxConfigSize = 1 << 20

// networkFile, orgFile and channelFile are the YAML shape of a network config.
type networkFile struct {
	Network  string        `yaml:"network"`
	Orgs     []orgFile     `yaml:"orgs"`
	Channels []channelFile `yaml:"channels,omitempty"`
}

type orgFile struct {
	Name string `yaml:"name"`
	// CA is base64 (standard, padded) of crypto.MarshalPublicKey.
	CA string `yaml:"ca"`
}

type channelFile struct {
	Name       string   `yaml:"name"`
	Orgs       []string `yaml:"orgs,flow"`
	Publishers []string `yaml:"publishers,flow,omitempty"`
}

const configHeader = `# fabgossip network config. Every peer of the network holds this same file.
# orgs[].ca is the org CA's public key: base64 of libp2p's protobuf encoding.
# channels[].publishers lists the member orgs that may publish; omitted or
# empty means every member org may.
`

// ParseNetwork parses and validates a network config; name is the file name
// used in error messages. The format:
//
//	network: fabnet              # required; certificates name it
//	orgs:                        # at least one
//	  - name: Org1
//	    ca: CAESIH...            # base64 of crypto.MarshalPublicKey(Ed25519 CA key)
//	  - name: Org2
//	    ca: CAESIB...
//	channels:                    # optional
//	  - name: ch0
//	    orgs: [Org1, Org2]       # members, at least one
//	    publishers: [Org1]       # optional; omitted or empty: every member
//
// Unknown fields, several YAML documents and every rule of
// NetworkSpec.Validate are errors. The error lists every mistake, each a
// *ConfigError like
//
//	network.yaml:9: channels[1].orgs[0]: unknown org "Org9"
func ParseNetwork(name string, data []byte) (*Network, error) {
	var file networkFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&file)
	if errors.Is(err, io.EOF) {
		return nil, &ConfigError{File: name, Msg: "empty file; want a network config with network, orgs and channels"}
	}
	var tree yamlTree
	if err == nil || isTypeError(err) {
		// The file is well-formed YAML, so this cannot fail; the tree only
		// gives error messages their lines and paths.
		var root yaml.Node
		if yaml.Unmarshal(data, &root) == nil {
			tree = newYAMLTree(&root)
		}
	}
	var errs []*ConfigError
	if err != nil {
		errs = decodeErrors(name, err, tree)
		// After unknown fields alone the rest decoded as written, so the
		// rules are checked too and every mistake is reported at once. After
		// a type error the rules would only echo it (a list that did not
		// decode looks empty), so it is reported alone.
		for _, e := range errs {
			if !e.unknownField {
				return nil, joinConfigErrors(errs)
			}
		}
	} else {
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			return nil, &ConfigError{File: name, Line: extra.Line, Msg: "more than one YAML document; want exactly one network config"}
		}
	}

	spec, specErrs := file.spec()
	specErrs = append(specErrs, spec.validate(caReported(specErrs))...)
	for _, e := range specErrs {
		e.File = name
		e.Line = tree.lineOf(e.Field)
	}
	if errs = append(errs, specErrs...); len(errs) > 0 {
		return nil, joinConfigErrors(errs)
	}
	return buildNetwork(spec), nil
}

// LoadNetwork reads and parses the network config at path (see ParseNetwork).
func LoadNetwork(path string) (*Network, error) {
	data, err := readFileCapped(path, MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("network config: %w", err)
	}
	return ParseNetwork(path, data)
}

// Marshal encodes the network as a config file that ParseNetwork reads back
// to an equal network, with a short explanatory header.
func (n *Network) Marshal() ([]byte, error) {
	file := networkFile{Network: n.spec.Name}
	for _, o := range n.spec.Orgs {
		ca, err := crypto.MarshalPublicKey(o.CA)
		if err != nil {
			return nil, fmt.Errorf("marshal CA key of org %q: %w", o.Name, err)
		}
		file.Orgs = append(file.Orgs, orgFile{Name: o.Name, CA: base64.StdEncoding.EncodeToString(ca)})
	}
	for _, c := range n.spec.Channels {
		file.Channels = append(file.Channels, channelFile(c))
	}
	var buf bytes.Buffer
	buf.WriteString(configHeader)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&file); err != nil {
		return nil, fmt.Errorf("marshal network config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal network config: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteNetwork writes the network's config file (see Marshal) atomically with
// mode 0644: the config holds only public keys. With CreateOnly it refuses to
// replace an existing file (the error wraps fs.ErrExist).
func WriteNetwork(path string, n *Network, mode WriteMode) error {
	data, err := n.Marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o644, mode)
}

// spec decodes the CA keys, reporting those that do not decode.
func (f *networkFile) spec() (NetworkSpec, []*ConfigError) {
	var errs []*ConfigError
	spec := NetworkSpec{Name: f.Network}
	for i, o := range f.Orgs {
		org := Org{Name: o.Name}
		if o.CA != "" {
			ca, err := decodeCA(o.CA)
			if err != nil {
				errs = append(errs, &ConfigError{
					Field: fmt.Sprintf("orgs[%d].ca", i),
					Msg:   fmt.Sprintf("invalid CA key %s of org %q: %v", quoteShort(o.CA), o.Name, err),
				})
			}
			org.CA = ca
		}
		spec.Orgs = append(spec.Orgs, org)
	}
	for _, c := range f.Channels {
		spec.Channels = append(spec.Channels, Channel(c))
	}
	return spec, errs
}

func decodeCA(s string) (crypto.PubKey, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64 of a libp2p public key")
	}
	key, err := crypto.UnmarshalPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("not a libp2p public key: %v", err)
	}
	return key, nil
}

// caReported marks the orgs whose CA was already reported by spec().
func caReported(errs []*ConfigError) map[int]bool {
	m := make(map[int]bool)
	for _, e := range errs {
		var i int
		if _, err := fmt.Sscanf(e.Field, "orgs[%d].ca", &i); err == nil {
			m[i] = true
		}
	}
	return m
}

// quoteShort quotes a value for an error message, eliding the middle of long
// ones (CA keys) so that messages stay one readable line.
func quoteShort(s string) string {
	const limit = 24
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:limit/2]+"…"+s[len(s)-limit/2:]) + fmt.Sprintf(" (%d bytes)", len(s))
}

func isTypeError(err error) bool {
	var te *yaml.TypeError
	return errors.As(err, &te)
}

var (
	reSyntax      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	reUnknown     = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)
	reWrongType   = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)$")
	knownFieldsOf = map[string]string{}
	kindOf        = map[string]string{}
)

func init() {
	for _, t := range []reflect.Type{
		reflect.TypeFor[networkFile](),
		reflect.TypeFor[orgFile](),
		reflect.TypeFor[channelFile](),
	} {
		var names []string
		for f := range t.Fields() {
			names = append(names, strings.Split(f.Tag.Get("yaml"), ",")[0])
		}
		knownFieldsOf[t.String()] = strings.Join(names, ", ")
		kindOf[t.String()] = "a mapping"
	}
	kindOf["string"] = "a string"
	kindOf["[]string"] = "a list of org names"
	kindOf[reflect.TypeFor[[]orgFile]().String()] = "a list of orgs"
	kindOf[reflect.TypeFor[[]channelFile]().String()] = "a list of channels"
}

// decodeErrors turns the YAML library's errors into ConfigErrors with a field
// path and a message in the config's own terms; a message it does not
// recognise is kept as it is.
func decodeErrors(file string, err error, tree yamlTree) []*ConfigError {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := err.Error()
		if m := reSyntax.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return []*ConfigError{{File: file, Line: line, Msg: "invalid YAML: " + m[2]}}
		}
		return []*ConfigError{{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}}
	}
	var errs []*ConfigError
	for _, msg := range te.Errors {
		e := &ConfigError{File: file, Msg: msg}
		if m := reUnknown.FindStringSubmatch(msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Field = tree.keyAt(e.Line, m[2])
			e.unknownField = true
			e.Msg = fmt.Sprintf("unknown field %q", m[2])
			if known := knownFieldsOf[m[3]]; known != "" {
				e.Msg += " (known fields: " + known + ")"
			}
		} else if m := reWrongType.FindStringSubmatch(msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Field = tree.valueAt(e.Line, m[2])
			want := kindOf[m[4]]
			if want == "" {
				want = m[4]
			}
			got := map[string]string{"!!seq": "a list", "!!map": "a mapping"}[m[2]]
			if got == "" {
				got = strconv.Quote(m[3])
			}
			e.Msg = fmt.Sprintf("want %s, got %s", want, got)
		}
		errs = append(errs, e)
	}
	return errs
}

// yamlTree is a flat view of a parsed config: every field's path and where it
// is, to put lines and paths on error messages. Lookups are by map, so a
// large file with many mistakes stays linear.
type yamlTree struct {
	fields []yamlField
	byPath map[string]int // path → index in fields
	byLine map[int][]int  // key and value lines → indexes in fields, outermost first
}

type yamlField struct {
	path      string // "channels[1].orgs[0]"
	line      int    // of the key, or of the item in a list
	valueLine int
	valueTag  string // "!!str", "!!seq", "!!map"…
}

func newYAMLTree(root *yaml.Node) yamlTree {
	t := yamlTree{byPath: make(map[string]int), byLine: make(map[int][]int)}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		t.walk(root.Content[0], "", root.Content[0].Line)
	}
	return t
}

func (t *yamlTree) walk(n *yaml.Node, path string, line int) {
	i := len(t.fields)
	t.fields = append(t.fields, yamlField{path: path, line: line, valueLine: n.Line, valueTag: n.ShortTag()})
	if _, dup := t.byPath[path]; !dup {
		t.byPath[path] = i
	}
	t.byLine[line] = append(t.byLine[line], i)
	if n.Line != line {
		t.byLine[n.Line] = append(t.byLine[n.Line], i)
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if path != "" {
				key = path + "." + key
			}
			t.walk(n.Content[i+1], key, n.Content[i].Line)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			t.walk(item, fmt.Sprintf("%s[%d]", path, i), item.Line)
		}
	}
}

// keyAt is the path of the mapping key named key on line.
func (t yamlTree) keyAt(line int, key string) string {
	for _, i := range t.byLine[line] {
		if f := t.fields[i]; f.line == line && (f.path == key || strings.HasSuffix(f.path, "."+key)) {
			return f.path
		}
	}
	return key
}

// valueAt is the path of the innermost value with the given tag on line.
func (t yamlTree) valueAt(line int, tag string) string {
	path := ""
	for _, i := range t.byLine[line] {
		if f := t.fields[i]; f.valueLine == line && f.valueTag == tag {
			path = f.path
		}
	}
	return path
}

// lineOf is the line of the field at path, or of its closest ancestor that is
// in the file (a missing field is reported where its parent is); 0 if none.
func (t yamlTree) lineOf(path string) int {
	for {
		if i, ok := t.byPath[path]; ok {
			return t.fields[i].line
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return 0
		}
		path = path[:i]
	}
}

package gateway

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testFrontendConfig is a minimal frontend plugin config for config tests.
type testFrontendConfig struct {
	Listen         string    `hcl:"listen"`
	ListenRange    hcl.Range `hcl:"listen,attr_range"`
	Users          string    `hcl:"users,optional"`
	UsersRange     hcl.Range `hcl:"users,attr_range"`
	AllowAnonymous bool      `hcl:"allow_anonymous,optional"`
	TURN           bool      `hcl:"turn,optional"`
	FirstByte      *int      `hcl:"first_byte,optional"`
	Reply          string    `hcl:"reply,optional"`
}

func (c *testFrontendConfig) Settings() FrontendSettings {
	return FrontendSettings{Listens: []Setting{{c.Listen, c.ListenRange}}, Users: Setting{c.Users, c.UsersRange},
		AllowAnonymous: c.AllowAnonymous, Proxy: !c.TURN, NeedsTURNKeys: c.TURN}
}

type testBackendConfig struct {
	Server   string    `hcl:"server,optional"`
	ViaName  string    `hcl:"via,optional"`
	ViaRange hcl.Range `hcl:"via,attr_range"`
}

func (c *testBackendConfig) Via() Setting { return Setting{c.ViaName, c.ViaRange} }

type nopBackend struct{ name string }

func (b nopBackend) Name() string { return b.name }
func (b nopBackend) Dial(context.Context, *StreamRequest) (*Stream, error) {
	return nil, NewError(ReasonRefused, "nop", nil)
}
func (b nopBackend) Listen(context.Context, *BindRequest) (Binding, error) {
	return nil, NewError(ReasonCommandNotSupported, "nop", nil)
}
func (b nopBackend) Associate(context.Context, *AssocRequest) (Association, error) {
	return nil, NewError(ReasonCommandNotSupported, "nop", nil)
}

type nopFrontend struct {
	name  string
	eps   []Endpoint
	reply string
}

func (f *nopFrontend) Name() string          { return f.name }
func (f *nopFrontend) Endpoints() []Endpoint { return f.eps }
func (f *nopFrontend) ServeConn(ctx context.Context, c net.Conn, _ Endpoint) {
	b := make([]byte, 1)
	c.Read(b)
	c.Write([]byte(f.reply))
}
func (f *nopFrontend) ServePacket(ctx context.Context, pc net.PacketConn, _ Endpoint) error {
	<-ctx.Done()
	return nil
}

func testRegistry() *Registry {
	r := NewRegistry()
	r.Frontend("test", FrontendPlugin{
		NewConfig: func() any { return &testFrontendConfig{} },
		New: func(env *Env, name string, cfg any) (Frontend, error) {
			c := cfg.(*testFrontendConfig)
			ep := Endpoint{Network: "tcp", Address: c.Listen}
			if c.FirstByte != nil {
				ep.FirstBytes = []byte{byte(*c.FirstByte)}
			}
			return &nopFrontend{name: name, eps: []Endpoint{ep}, reply: c.Reply}, nil
		},
	})
	r.Backend("test", BackendPlugin{
		NewConfig: func() any { return &testBackendConfig{} },
		New:       func(env *Env, name string, cfg any) (Backend, error) { return nopBackend{name}, nil },
	})
	return r
}

// TestConfigDiagnostics checks every testdata/config/*.hcl against its
// .golden file: the diagnostics printed with file:line:column, or "valid".
func TestConfigDiagnostics(t *testing.T) {
	files, _ := filepath.Glob("testdata/config/*.hcl")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, diags := LoadConfig(f, testRegistry())
			var buf bytes.Buffer
			if len(diags) == 0 {
				buf.WriteString("valid\n")
			}
			for _, d := range diags {
				if d.Subject != nil {
					buf.WriteString(d.Subject.String() + ": ")
				}
				buf.WriteString(d.Summary + "; " + d.Detail + "\n")
			}
			golden := strings.TrimSuffix(f, ".hcl") + ".golden"
			if *update {
				os.WriteFile(golden, buf.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if buf.String() != string(want) {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", buf.String(), want)
			}
		})
	}
}

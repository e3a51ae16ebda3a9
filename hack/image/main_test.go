package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImage checks the archive make image wrote: both of its views (OCI
// layout and docker save) hold the same image, the image runs as nonroot with
// the binary as entrypoint, and that binary, unpacked and run, prints the
// version the image is labelled with.
func TestImage(t *testing.T) {
	archive := os.Getenv("MCP_AUTHZ_IMAGE")
	ref := os.Getenv("MCP_AUTHZ_IMAGE_REF")
	version := os.Getenv("MCP_AUTHZ_IMAGE_VERSION")
	if archive == "" || ref == "" || version == "" {
		t.Skip("MCP_AUTHZ_IMAGE, MCP_AUTHZ_IMAGE_REF and MCP_AUTHZ_IMAGE_VERSION are unset: run make image-test")
	}
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}

	// The docker save view: what docker load and crane push read.
	dockerImg, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatalf("read as docker archive: %v", err)
	}
	// The OCI layout view: what skopeo (oci-archive:) and podman read.
	dir := t.TempDir()
	untar(t, archive, dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("read as OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index holds %d manifests, want 1", len(im.Manifests))
	}
	if got := im.Manifests[0].Annotations["io.containerd.image.name"]; got != tag.Name() {
		t.Errorf("io.containerd.image.name = %q, want %q", got, tag.Name())
	}
	if got := im.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != tag.TagStr() {
		t.Errorf("org.opencontainers.image.ref.name = %q, want %q", got, tag.TagStr())
	}
	ociImg, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	// The docker view carries the same config and layers; its manifest is
	// Docker's (docker load and crane push of the tar write that one), so
	// only the OCI view's manifest digest is the one make image prints.
	same := func(f func(v1.Image) (any, error)) {
		t.Helper()
		a, errA := f(ociImg)
		b, errB := f(dockerImg)
		if errA != nil || errB != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("OCI view %v (%v), docker view %v (%v): not the same image", a, errA, b, errB)
		}
	}
	same(func(i v1.Image) (any, error) { return i.ConfigName() })
	same(func(i v1.Image) (any, error) {
		ls, err := i.Layers()
		var ds []v1.Hash
		for _, l := range ls {
			d, derr := l.Digest()
			err = errors.Join(err, derr)
			ds = append(ds, d)
		}
		return ds, err
	})
	dd, err := ociImg.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if od := im.Manifests[0].Digest; od != dd {
		t.Errorf("index names %s, image is %s", od, dd)
	}

	cf, err := ociImg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != User {
		t.Errorf("User = %q, want %q", cf.Config.User, User)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{Entrypoint}) {
		t.Errorf("Entrypoint = %q, want [%s]", cf.Config.Entrypoint, Entrypoint)
	}
	if cf.OS != "linux" {
		t.Errorf("OS = %q", cf.OS)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version": version,
		"org.opencontainers.image.source":  "https://github.com/mcp-authz/mcp-authz",
		"org.opencontainers.image.title":   "mcp-authz",
	} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if len(cf.Config.Labels["org.opencontainers.image.revision"]) != 40 {
		t.Errorf("label org.opencontainers.image.revision = %q, want a commit", cf.Config.Labels["org.opencontainers.image.revision"])
	}

	root := t.TempDir()
	files := unpack(t, ociImg, root)
	for _, want := range []struct {
		name  string
		mode  os.FileMode
		owner int
	}{
		{name: strings.TrimPrefix(Entrypoint, "/"), mode: 0o755, owner: 0},
		{name: "etc/passwd", mode: 0o644, owner: 0},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, owner: 0},
		{name: "home/nonroot", mode: os.ModeDir | 0o700, owner: uid},
		{name: "tmp", mode: os.ModeDir | os.ModeSticky | 0o777, owner: 0},
	} {
		h, ok := files[want.name]
		if !ok {
			t.Errorf("image has no %s", want.name)
			continue
		}
		if got := h.FileInfo().Mode(); got != want.mode || h.Uid != want.owner {
			t.Errorf("%s: mode %v uid %d, want %v uid %d", want.name, got, h.Uid, want.mode, want.owner)
		}
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(passwd), "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", passwd)
	}
	pem, err := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		t.Error("the CA bundle holds no certificate")
	}

	// Run the entrypoint, as the container runtime would (as far as an
	// unpacked root can be run without one): it must print its version.
	if arch := cf.Architecture; arch != runtime.GOARCH || runtime.GOOS != "linux" {
		t.Skipf("the image is for linux/%s, this machine is %s/%s: not running its entrypoint", arch, runtime.GOOS, runtime.GOARCH)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(root, Entrypoint), append(cf.Config.Cmd, "version")...)
	cmd.Dir = root
	cmd.Env = cf.Config.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", Entrypoint, err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "mcp-authz "+version; got != want {
		t.Errorf("%s version printed %q, want %q", Entrypoint, got, want)
	}
}

// untar extracts a tar of regular files and directories into dir.
func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	extract(t, tar.NewReader(f), dir)
}

// unpack writes the image's file system under dir and returns its headers.
func unpack(t *testing.T, img v1.Image, dir string) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	return extract(t, tar.NewReader(rc), dir)
}

func extract(t *testing.T, tr *tar.Reader, dir string) map[string]*tar.Header {
	t.Helper()
	headers := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return headers
		}
		if err != nil {
			t.Fatal(err)
		}
		clean := filepath.Clean(h.Name)
		if !filepath.IsLocal(clean) {
			t.Fatalf("entry %q escapes the root", h.Name)
		}
		headers[clean] = h
		target := filepath.Join(dir, clean)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(target, data, h.FileInfo().Mode().Perm()|0o200); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("entry %q: unexpected type %c", h.Name, h.Typeflag)
		}
	}
}

// goBuild builds a small static program for the build tests.
func goBuild(t *testing.T, env ...string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"ok\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prog")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, src)
	cmd.Dir = dir // outside any module
	cmd.Env = append(os.Environ(), append([]string{"CGO_ENABLED=0", "GOOS=linux"}, env...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestBuildRejects(t *testing.T) {
	static := goBuild(t, "GOARCH=amd64")
	arm := goBuild(t, "GOARCH=arm64")
	good := Config{
		Binary: static, CACertificates: "/etc/ssl/certs/ca-certificates.crt",
		Ref: "ghcr.io/mcp-authz/mcp-authz:v0.1.0", Version: "v0.1.0", Platform: "linux/amd64",
	}
	notPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(notPEM, []byte("nothing here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{name: "dynamically linked", change: func(c *Config) { c.Binary = dynamicBinary(t) }, want: "dynamically linked"},
		{name: "not ELF", change: func(c *Config) { c.Binary = notPEM }, want: "not an ELF"},
		{name: "other architecture", change: func(c *Config) { c.Binary = arm }, want: "does not run on linux/amd64"},
		{name: "no such binary", change: func(c *Config) { c.Binary = "/nonexistent" }, want: "read binary"},
		{name: "reference without tag", change: func(c *Config) { c.Ref = "ghcr.io/mcp-authz/mcp-authz" }, want: "image reference"},
		{name: "reference with bad tag", change: func(c *Config) { c.Ref = "ghcr.io/mcp-authz/mcp-authz:v0.1.0+1" }, want: "image reference"},
		{name: "no version", change: func(c *Config) { c.Version = "" }, want: "version is required"},
		{name: "not linux", change: func(c *Config) { c.Platform = "darwin/amd64" }, want: "platform"},
		{name: "no CA certificates", change: func(c *Config) { c.CACertificates = notPEM }, want: "no PEM certificate"},
	}
	if _, _, err := Build(good); err != nil {
		t.Fatalf("the good configuration fails: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			_, _, err := Build(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// dynamicBinary finds a dynamically linked executable of this machine, or
// skips that case.
func dynamicBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/ls", "/usr/bin/ls", "/bin/sh"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no dynamically linked executable found on this machine")
	return ""
}

// TestReproducible builds the same inputs twice: the archives are identical,
// byte for byte, and a different creation time gives a different image.
func TestReproducible(t *testing.T) {
	c := Config{
		Binary: goBuild(t, "GOARCH=amd64"), CACertificates: "/etc/ssl/certs/ca-certificates.crt",
		Ref: "ghcr.io/mcp-authz/mcp-authz:v0.1.0", Version: "v0.1.0", Platform: "linux/amd64",
		Created: time.Unix(1700000000, 0).UTC(),
	}
	archive := func(c Config) []byte {
		img, tag, err := Build(c)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteArchive(&buf, img, tag, c.Created); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a, b := archive(c), archive(c)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same inputs differ")
	}
	c.Created = c.Created.Add(time.Second)
	if bytes.Equal(a, archive(c)) {
		t.Error("a different creation time gives the same archive")
	}
	// The docker manifest.json names the tag and blobs that exist.
	tr := tar.NewReader(bytes.NewReader(a))
	names := map[string]bool{}
	var manifest []byte
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names[h.Name] = true
		if h.Name == "manifest.json" {
			manifest, _ = io.ReadAll(tr)
		}
	}
	var m tarball.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil || len(m) != 1 {
		t.Fatalf("manifest.json: %v %s", err, manifest)
	}
	if !slices.Equal(m[0].RepoTags, []string{c.Ref}) || !names[m[0].Config] || len(m[0].Layers) != 1 || !names[m[0].Layers[0]] {
		t.Errorf("manifest.json %+v does not match the archive %v", m[0], names)
	}
}

// TestDockerfileAgrees reads the Dockerfile users build with a container
// engine (none runs here) and checks it makes the image make image makes:
// a static binary stamped with the version, distroless static nonroot, the
// same user and entrypoint.
func TestDockerfileAgrees(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	cont := ""
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cont += s + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var froms []string
	var user, entrypoint, build string
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, rest)
		case "USER":
			user = rest
		case "ENTRYPOINT":
			entrypoint = rest
		case "RUN":
			if strings.Contains(rest, "go build") {
				build = rest
			}
		}
	}
	if len(froms) < 2 || !strings.Contains(froms[len(froms)-1], "gcr.io/distroless/static") || !strings.Contains(froms[len(froms)-1], ":nonroot") {
		t.Errorf("final stage FROM %q, want gcr.io/distroless/static…:nonroot", froms)
	}
	if user != User {
		t.Errorf("USER %q, want %q", user, User)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || !slices.Equal(ep, []string{Entrypoint}) {
		t.Errorf("ENTRYPOINT %s, want [%q] (exec form)", entrypoint, Entrypoint)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-o " + Entrypoint, "./cmd/mcp-authz"} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build step %q lacks %q", build, want)
		}
	}
}

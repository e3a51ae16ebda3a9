// Command image assembles the mcp-authz container image from a static binary
// without a container engine or a registry, as `make image` runs it:
//
//	image -binary bin/linux_amd64/mcp-authz -ref ghcr.io/mcp-authz/mcp-authz:v0.1.0 \
//	  -version v0.1.0 -revision $(git rev-parse HEAD) -created $(git log -1 --format=%ct) \
//	  -out bin/mcp-authz-image.tar
//
// The image is what the Dockerfile builds from distroless static:nonroot: one
// layer with the binary, /etc/passwd and /etc/group naming the nonroot user
// (65532), the CA certificates and a /tmp, run as 65532:65532. The output is
// an OCI image layout in a tar (skopeo's oci-archive, podman load) that also
// holds a docker-save manifest.json, as docker save writes since Docker 25, so
// docker load and crane push read it too. Everything in it is derived from
// the inputs and -created: the same inputs give the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image is made of; the Dockerfile must agree (TestDockerfileAgrees).
const (
	// Entrypoint is where the binary lives in the image.
	Entrypoint = "/usr/local/bin/mcp-authz"
	// User is distroless's nonroot user and group.
	User = "65532:65532"
	uid  = 65532
)

// Config is one image to build.
type Config struct {
	// Binary is the statically linked mcp-authz for Platform.
	Binary string
	// CACertificates is a PEM bundle installed as /etc/ssl/certs/ca-certificates.crt.
	CACertificates string
	// Ref names the image (registry/repository:tag).
	Ref string
	// Version is stamped in the binary and labelled on the image.
	Version string
	// Revision is the source commit.
	Revision string
	// Source is the source repository URL.
	Source string
	// Created is the image's creation time, and every file's time.
	Created time.Time
	// Platform is the OS and architecture of Binary ("linux/amd64").
	Platform string
}

func main() {
	var c Config
	var created int64
	flag.StringVar(&c.Binary, "binary", "", "the static mcp-authz binary")
	flag.StringVar(&c.CACertificates, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of trusted CAs")
	flag.StringVar(&c.Ref, "ref", "", "image reference (registry/repository:tag)")
	flag.StringVar(&c.Version, "version", "", "version stamped in the binary")
	flag.StringVar(&c.Revision, "revision", "", "source commit")
	flag.StringVar(&c.Source, "source", "https://github.com/mcp-authz/mcp-authz", "source repository")
	flag.Int64Var(&created, "created", 0, "creation time, Unix seconds (SOURCE_DATE_EPOCH)")
	flag.StringVar(&c.Platform, "platform", "linux/amd64", "OS/architecture of the binary")
	out := flag.String("out", "", "the image archive to write")
	flag.Parse()
	c.Created = time.Unix(created, 0).UTC()
	if err := run(c, *out); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(c Config, out string) error {
	if out == "" {
		return errors.New("-out is required")
	}
	img, tag, err := Build(c)
	if err != nil {
		return err
	}
	// Write beside the target and rename, so a failed run never leaves a
	// half-written archive that looks built.
	tmp, err := os.CreateTemp(path.Dir(out), ".image-*.tar")
	if err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := WriteArchive(tmp, img, tag, c.Created); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return fmt.Errorf("image digest: %w", err)
	}
	fmt.Printf("%s %s@%s\n", out, tag.Name(), d)
	return nil
}

// Build assembles the image described by c.
func Build(c Config) (v1.Image, name.Tag, error) {
	tag, err := name.NewTag(c.Ref, name.StrictValidation)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("image reference %q: %w", c.Ref, err)
	}
	if c.Version == "" {
		return nil, name.Tag{}, errors.New("version is required")
	}
	osName, arch, ok := strings.Cut(c.Platform, "/")
	if !ok || osName != "linux" || arch == "" {
		return nil, name.Tag{}, fmt.Errorf("platform %q: want linux/<arch>", c.Platform)
	}
	bin, err := os.ReadFile(c.Binary)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("read binary: %w", err)
	}
	if err := checkStatic(bin, arch); err != nil {
		return nil, name.Tag{}, fmt.Errorf("binary %s: %w", c.Binary, err)
	}
	cas, err := os.ReadFile(c.CACertificates)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("read CA certificates: %w", err)
	}
	if !bytes.Contains(cas, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, name.Tag{}, fmt.Errorf("CA certificates %s: no PEM certificate", c.CACertificates)
	}

	rootfs, err := rootFS(bin, cas, c.Created)
	if err != nil {
		return nil, name.Tag{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(rootfs)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("image layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: c.Created}, CreatedBy: "hack/image: mcp-authz " + c.Version, Comment: "static binary, nonroot user, CA certificates"},
	})
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("image layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = osName, arch
	cfg.Created = v1.Time{Time: c.Created}
	cfg.Author = "mcp-authz"
	cfg.Config = v1.Config{
		User:       User,
		Entrypoint: []string{Entrypoint},
		WorkingDir: "/home/nonroot",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "mcp-authz",
			"org.opencontainers.image.description": "Authorization for MCP servers behind Envoy / Istio",
			"org.opencontainers.image.source":      c.Source,
			"org.opencontainers.image.url":         c.Source,
			"org.opencontainers.image.version":     c.Version,
			"org.opencontainers.image.revision":    c.Revision,
			"org.opencontainers.image.created":     c.Created.Format(time.RFC3339),
			"org.opencontainers.image.ref.name":    tag.TagStr(),
		},
		ExposedPorts: map[string]struct{}{"9001/tcp": {}, "8081/tcp": {}, "9090/tcp": {}},
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("image config: %w", err)
	}
	return img, tag, nil
}

// checkStatic refuses a binary that cannot run in an image without a libc:
// not ELF, another architecture, or dynamically linked.
func checkStatic(bin []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	defer func() { _ = f.Close() }()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV}[arch]
	if want == 0 || f.Machine != want {
		return fmt.Errorf("machine %v does not run on linux/%s", f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (build with CGO_ENABLED=0)")
		}
	}
	return nil
}

// rootFS is the one layer: what distroless static:nonroot holds that a Go
// binary needs, and the binary.
func rootFS(bin, cas []byte, mtime time.Time) ([]byte, error) {
	const passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	const group = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
	type entry struct {
		name  string
		mode  int64
		owner int
		data  []byte
		isDir bool
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, isDir: true},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755, isDir: true},
		{name: "etc/ssl/certs/", mode: 0o755, isDir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: cas},
		{name: "home/", mode: 0o755, isDir: true},
		{name: "home/nonroot/", mode: 0o700, owner: uid, isDir: true},
		{name: "tmp/", mode: 0o1777, isDir: true},
		{name: "usr/", mode: 0o755, isDir: true},
		{name: "usr/local/", mode: 0o755, isDir: true},
		{name: "usr/local/bin/", mode: 0o755, isDir: true},
		{name: strings.TrimPrefix(Entrypoint, "/"), mode: 0o755, data: bin},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.owner, Gid: e.owner, ModTime: mtime,
			Typeflag: tar.TypeReg, Size: int64(len(e.data)), Format: tar.FormatPAX,
		}
		if e.owner != 0 {
			h.Uname, h.Gname = "nonroot", "nonroot"
		} else {
			h.Uname, h.Gname = "root", "root"
		}
		if e.isDir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("image layer: %w", err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("image layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteArchive writes img as an OCI image layout in a tar, with the
// docker-save manifest.json beside it, every entry dated mtime.
func WriteArchive(w io.Writer, img v1.Image, tag name.Tag, mtime time.Time) error {
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("image manifest: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("image manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return fmt.Errorf("image manifest: %w", err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("image layers: %w", err)
	}

	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: mt,
			Digest:    digest,
			Size:      int64(len(manifest)),
			Platform:  &v1.Platform{OS: cf.OS, Architecture: cf.Architecture},
			Annotations: map[string]string{
				// containerd and Docker name the image after this one;
				// the OCI annotation holds the tag alone.
				"io.containerd.image.name":          tag.Name(),
				"org.opencontainers.image.ref.name": tag.TagStr(),
			},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("image index: %w", err)
	}
	blob := func(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
	docker := tarball.Manifest{{Config: blob(cfgName), RepoTags: []string{tag.Name()}}}

	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	add := func(name string, data []byte) error {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if dirs[d] {
				break
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	if err := add(blob(cfgName), config); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("image layer: %w", err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("image layer: %w", err)
		}
		data, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			return fmt.Errorf("image layer: %w", err)
		}
		if err := add(blob(d), data); err != nil {
			return fmt.Errorf("write image: %w", err)
		}
		docker[0].Layers = append(docker[0].Layers, blob(d))
	}
	if err := add(blob(digest), manifest); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	if err := add("index.json", indexJSON); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	dockerJSON, err := json.Marshal(docker)
	if err != nil {
		return fmt.Errorf("image manifest.json: %w", err)
	}
	if err := add("manifest.json", dockerJSON); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	return nil
}

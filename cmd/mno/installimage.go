package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"
)

// OCI media types of the image `mno install image` writes.
const (
	ociIndexType    = "application/vnd.oci.image.index.v1+json"
	ociManifestType = "application/vnd.oci.image.manifest.v1+json"
	ociConfigType   = "application/vnd.oci.image.config.v1+json"
	ociLayerType    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// imageFile is one file of the image's single layer.
type imageFile struct {
	Path string // absolute, in the image
	Mode int64
	Data []byte // nil for a directory
}

// imageFiles is what the image holds: the mno binary at /usr/local/bin/mno, the ELF
// interpreter and shared libraries it needs when it is not static (found where the dynamic
// linker would find them on this machine), and the directories the Deployment mounts over.
func imageFiles(bin string) ([]imageFile, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	files := []imageFile{{Path: "/usr/local/bin/mno", Mode: 0o755, Data: data}}
	for _, d := range []string{"/tmp", "/var/lib/mno", "/workspace", "/etc/mno/ssh", "/etc"} {
		files = append(files, imageFile{Path: d, Mode: 0o755})
	}
	files = append(files, imageFile{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/var/lib/mno:/sbin/nologin\n")},
		imageFile{Path: "/etc/nsswitch.conf", Mode: 0o644, Data: []byte("hosts: files dns\n")})
	libs, err := sharedObjects(bin)
	if err != nil {
		return nil, err
	}
	for _, l := range libs {
		b, err := os.ReadFile(l)
		if err != nil {
			return nil, err
		}
		files = append(files, imageFile{Path: l, Mode: 0o755, Data: b})
	}
	return files, nil
}

// sharedObjects returns the interpreter and the shared libraries (transitively) a dynamic
// ELF binary needs, resolved in the usual directories; none for a static binary.
func sharedObjects(bin string) ([]string, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	defer f.Close()
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, err
			}
			interp = string(bytes.TrimRight(b, "\x00"))
		}
	}
	if interp == "" {
		return nil, nil
	}
	dirs := []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/lib", "/usr/lib64", "/usr/lib"}
	seen := map[string]bool{}
	out := []string{interp}
	var walk func(path string) error
	walk = func(path string) error {
		g, err := elf.Open(path)
		if err != nil {
			return err
		}
		defer g.Close()
		needed, err := g.ImportedLibraries()
		if err != nil {
			return err
		}
		for _, n := range needed {
			if seen[n] {
				continue
			}
			seen[n] = true
			found := ""
			for _, d := range dirs {
				if _, err := os.Stat(filepath.Join(d, n)); err == nil {
					found = filepath.Join(d, n)
					break
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s, which is not in %v (build mno with CGO_ENABLED=0 for a static binary)", path, n, dirs)
			}
			out = append(out, found)
			if err := walk(found); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(bin); err != nil {
		return nil, err
	}
	sort.Strings(out[1:])
	return out, nil
}

// layerTar is the uncompressed layer (a tar with parent directories first) and its gzip.
func layerTar(files []imageFile) (raw, gz []byte, err error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	var mkdirs func(d string) error
	mkdirs = func(d string) error {
		if d == "/" || dirs[d] {
			return nil
		}
		if err := mkdirs(filepath.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755, ModTime: epoch})
	}
	for _, f := range files {
		if f.Data == nil {
			if err := mkdirs(f.Path); err != nil {
				return nil, nil, err
			}
			continue
		}
		if err := mkdirs(filepath.Dir(f.Path)); err != nil {
			return nil, nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path[1:], Mode: f.Mode, Size: int64(len(f.Data)), ModTime: epoch}); err != nil {
			return nil, nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(b.Bytes()); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return b.Bytes(), z.Bytes(), nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    map[string]string `json:"platform,omitempty"`
}

// writeImage writes an OCI image layout archive (what `k3s ctr images import` and
// `docker load`/`podman load` take) holding bin, named ref, to w.
func writeImage(w io.Writer, bin, ref string) error {
	files, err := imageFiles(bin)
	if err != nil {
		return err
	}
	raw, gz, err := layerTar(files)
	if err != nil {
		return err
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/usr/local/bin/mno"}, "Env": []string{"PATH=/usr/local/bin", "MNO_HOME=/var/lib/mno"},
			"WorkingDir": "/workspace", "User": "0"},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{digest(raw)}},
		"history": []map[string]any{{"created_by": "mno install image"}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": ociManifestType,
		"config": ociDescriptor{MediaType: ociConfigType, Digest: digest(cfg), Size: int64(len(cfg))},
		"layers": []ociDescriptor{{MediaType: ociLayerType, Digest: digest(gz), Size: int64(len(gz))}},
	})
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": ociIndexType,
		"manifests": []ociDescriptor{{MediaType: ociManifestType, Digest: digest(manifest), Size: int64(len(manifest)),
			Annotations: map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref},
			Platform:    map[string]string{"architecture": runtime.GOARCH, "os": "linux"}}},
	})
	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	blob := func(b []byte) string { return "blobs/sha256/" + digest(b)[len("sha256:"):] }
	for _, e := range []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blob(manifest), manifest},
		{blob(cfg), cfg},
		{blob(gz), gz},
	} {
		if err := put(e.name, e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

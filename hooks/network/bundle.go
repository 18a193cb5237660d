package network

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// bundleConfig is the part of config.json berth-net reads: the hostname and
// the rootfs. Decoding only these, not a whole specs.Spec, saves about 1 ms
// of every setup: encoding/json builds a decoder for each type it meets
// on first use, and a Spec holds hundreds.
type bundleConfig struct {
	Hostname string `json:"hostname"`
	Root     *struct {
		Path string `json:"path"`
	} `json:"root"`
}

// readBundle reads the container's config.json for its hostname and
// rootfs.
func readBundle(bundle string) (*bundleConfig, string, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, "", fmt.Errorf("bundle %s: %w", bundle, err)
	}
	var cfg bundleConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, "", fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	if cfg.Root == nil || cfg.Root.Path == "" {
		return nil, "", fmt.Errorf("bundle %s: config.json: root.path missing", bundle)
	}
	rootfs := cfg.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	return &cfg, rootfs, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

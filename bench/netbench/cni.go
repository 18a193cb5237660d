package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// cni runs Debian's CNI plugins the way a CNI runtime (libcni) runs a
// conflist of bridge (with host-local IPAM) and portmap: ADD in order, each
// plugin given the previous one's result, DEL in reverse order.
type cni struct {
	path, dir, bridge string
	mu                sync.Mutex
	results           map[string]json.RawMessage // container id -> bridge's ADD result
	ports             map[string]int
}

func newCNI(path, dir string) (*cni, error) {
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		if _, err := os.Stat(filepath.Join(path, p)); err != nil {
			return nil, fmt.Errorf("CNI plugin %s (install containernetworking-plugins): %w", p, err)
		}
	}
	return &cni{path: path, dir: dir, bridge: "cb" + strconv.Itoa(os.Getpid()%100000),
		results: map[string]json.RawMessage{}, ports: map[string]int{}}, nil
}

func (c *cni) name() string { return "CNI bridge+portmap" }

func (c *cni) bridgeConf() map[string]any {
	return map[string]any{
		"cniVersion": "1.0.0", "name": "netbench", "type": "bridge", "bridge": c.bridge,
		"isGateway": true, "ipMasq": true,
		"ipam": map[string]any{"type": "host-local", "dataDir": filepath.Join(c.dir, "cni-ipam"),
			"ranges": [][]map[string]string{{{"subnet": "10.251.0.0/16"}}}},
	}
}

func (c *cni) portmapConf(hostPort int, prev json.RawMessage) map[string]any {
	return map[string]any{
		"cniVersion": "1.0.0", "name": "netbench", "type": "portmap", "snat": true,
		"capabilities": map[string]bool{"portMappings": true},
		"runtimeConfig": map[string]any{"portMappings": []map[string]any{
			{"hostPort": hostPort, "containerPort": 80, "protocol": "tcp"},
			{"hostPort": hostPort, "containerPort": 53, "protocol": "udp"},
		}},
		"prevResult": prev,
	}
}

func (c *cni) call(plugin, command string, s *standIn, conf map[string]any) (time.Duration, int64, []byte, error) {
	data, _ := json.Marshal(conf)
	cmd := exec.Command(filepath.Join(c.path, plugin))
	cmd.Stdin = bytes.NewReader(data)
	cmd.Env = append(os.Environ(), "CNI_COMMAND="+command, "CNI_CONTAINERID="+s.id,
		"CNI_NETNS="+s.netnsPath(), "CNI_IFNAME=eth0", "CNI_PATH="+c.path)
	return timed(cmd)
}

func (c *cni) setup(s *standIn, hostPort int) (time.Duration, int64, error) {
	d1, rss1, res, err := c.call("bridge", "ADD", s, c.bridgeConf())
	if err != nil {
		return 0, 0, err
	}
	d2, rss2, _, err := c.call("portmap", "ADD", s, c.portmapConf(hostPort, res))
	if err != nil {
		return 0, 0, err
	}
	c.mu.Lock()
	c.results[s.id], c.ports[s.id] = res, hostPort
	c.mu.Unlock()
	return d1 + d2, max(rss1, rss2), nil
}

func (c *cni) teardown(s *standIn) (time.Duration, error) {
	c.mu.Lock()
	res, port := c.results[s.id], c.ports[s.id]
	c.mu.Unlock()
	d1, _, _, err := c.call("portmap", "DEL", s, c.portmapConf(port, res))
	if err != nil {
		return 0, err
	}
	conf := c.bridgeConf()
	conf["prevResult"] = res
	d2, _, _, err := c.call("bridge", "DEL", s, conf)
	return d1 + d2, err
}

// close removes the bridge; the plugins leave it (and their chains, which
// go with the test namespace).
func (c *cni) close() {
	exec.Command("ip", "link", "del", c.bridge).Run()
}

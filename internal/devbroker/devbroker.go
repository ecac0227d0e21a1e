// Package devbroker runs the embedded Kafka-protocol broker of `strata dev`
// and the tests: franz-go's kfake, persisted under a data directory.
package devbroker

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configure the broker.
type Options struct {
	// DataDir persists topics and group offsets across restarts; empty
	// keeps everything in memory.
	DataDir string
	// Port to listen on, on 127.0.0.1; 0 picks a free one.
	Port int
	// Extra kfake options.
	Extra []kfake.Opt
}

// Start starts a one-broker cluster. Close it with (*kfake.Cluster).Close.
func Start(o Options) (*kfake.Cluster, string, error) {
	port := o.Port
	if port == 0 {
		// kfake picks a random port for 0 too, but only after binding;
		// ask the OS for a free one so the address is known up front.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, fmt.Sprintf("127.0.0.1:%d", port))
		}),
		kfake.BrokerConfigs(map[string]string{
			// Compact the snapshot and view topics every minute rather
			// than kfake's default hour.
			"log.cleaner.backoff.ms": "60000",
		}),
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(append(opts, o.Extra...)...)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, "", fmt.Errorf("embedded broker: port %d is in use: pass --kafka-port with a free port (or 0 for any)", port)
		}
		return nil, "", fmt.Errorf("embedded broker: %w", err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, "", errors.New("embedded broker: no listen address")
	}
	return c, addrs[0], nil
}

package schemas

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2/soe"
)

// Registry maps the schema IDs of a Confluent-compatible schema registry to
// the catalog's versions, for records in that registry's wire format: 0x00,
// the schema ID as 4 big-endian bytes, the Avro body. It is safe for
// concurrent use.
type Registry struct {
	mu   sync.RWMutex
	byID map[int]*Version
	idOf map[*Version]int
	// Fetch returns the schema text of an ID this Registry has not seen
	// (registered by another producer); nil makes unknown IDs errors.
	Fetch func(id int) (string, error)
}

// NewRegistry returns an empty Registry that resolves unknown IDs with
// fetch.
func NewRegistry(fetch func(id int) (string, error)) *Registry {
	return &Registry{byID: map[int]*Version{}, idOf: map[*Version]int{}, Fetch: fetch}
}

// Add records that the registry knows ver as id.
func (r *Registry) Add(id int, ver *Version) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byID[id] = ver
	r.idOf[ver] = id
}

// ID returns the registry ID of ver.
func (r *Registry) ID(ver *Version) (int, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.idOf[ver]
	return id, ok
}

// ErrUnknownSchemaID is returned for a registry ID that maps to no version.
var ErrUnknownSchemaID = errors.New("strata: unknown schema registry ID")

func (c *Catalog) versionOfID(id int) (*Version, error) {
	r := c.registry
	r.mu.RLock()
	ver, ok := r.byID[id]
	r.mu.RUnlock()
	if ok {
		return ver, nil
	}
	if r.Fetch == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownSchemaID, id)
	}
	text, err := r.Fetch(id)
	if err != nil {
		return nil, fmt.Errorf("%w %d: %v", ErrUnknownSchemaID, id, err)
	}
	sch, err := parseSchema([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("%w %d: the registry's schema does not parse: %v", ErrUnknownSchemaID, id, err)
	}
	fp, err := soe.ComputeFingerprint(sch)
	if err != nil {
		return nil, err
	}
	ver, ok = c.byFP[binary.LittleEndian.Uint64(fp)]
	if !ok {
		return nil, fmt.Errorf("%w %d: its schema (fingerprint %016x) is not in this build's catalog", ErrUnknownSchemaID, id, binary.LittleEndian.Uint64(fp))
	}
	r.Add(id, ver)
	return ver, nil
}

// WithRegistry returns a catalog that also reads the registry's wire
// format, and writes it when write is true (else it keeps writing Avro
// single-object encoding).
func (c *Catalog) WithRegistry(r *Registry, write bool) *Catalog {
	cp := *c
	cp.registry, cp.writeRegistry = r, write
	return &cp
}

// frame prefixes body with the header of ver in the catalog's write
// format.
func (c *Catalog) frame(ver *Version, bodyLen int) ([]byte, error) {
	if c.registry != nil && c.writeRegistry {
		id, ok := c.registry.ID(ver)
		if !ok {
			return nil, fmt.Errorf("%s is not registered in the schema registry: run strata schema register", ver.File)
		}
		out := make([]byte, 5, 5+bodyLen)
		binary.BigEndian.PutUint32(out[1:], uint32(id))
		return out, nil
	}
	out := make([]byte, 10, 10+bodyLen)
	out[0], out[1] = soe.Magic[0], soe.Magic[1]
	binary.LittleEndian.PutUint64(out[2:], ver.Fingerprint)
	return out, nil
}

// Local returns the catalog that writes single-object encoding whatever
// the registry settings: for bytes that never leave the process (the state
// store), which must not depend on a registry's IDs.
func (c *Catalog) Local() *Catalog {
	if !c.writeRegistry {
		return c
	}
	cp := *c
	cp.writeRegistry = false
	return &cp
}

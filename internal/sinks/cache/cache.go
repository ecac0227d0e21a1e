// Package cache keeps views' rows in Redis, the seed's read-through cache:
// the projection refreshes every row it changes, and reads fill it on a
// miss. Each row is the hash <prefix>:<key> {row: its JSON, v: its
// RowVersion}, expiring after the TTL; every write, the projection's and
// a read's fill, is a compare-and-set in one Lua script that keeps the
// entry only when its version is higher than the cached one. So a fill
// that read a row before the projection changed it cannot overwrite the
// newer row, and a replay never moves an entry back.
//
// A deleted row becomes a tombstone, the hash with its version and no
// row, rather than a DEL: a fill racing with the delete (it read the row
// just before) would otherwise put the deleted row back until the TTL. A
// tombstone is a hit that says "no such row".
package cache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/projections"
)

// Config configures the connection to Redis.
type Config struct {
	// URL is redis://[user:password@]host:port/db, or rediss:// for TLS.
	URL string
	// Password, when set, overrides the URL's.
	Password string
	// CAFile verifies the server's certificate with rediss://.
	CAFile string
	// Timeout bounds dialing and each command. Default 2s.
	Timeout time.Duration
}

// NewClient returns a client for cfg. It connects lazily. Commands are
// not retried by the client: a failed Write is retried by the projection,
// and a failed read falls through to the next store.
func NewClient(cfg Config) (*redis.Client, error) {
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// A url.Error repeats the URL, password and all: keep its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cache: url: %w (want redis://host:port/db or rediss://)", err)
	}
	if cfg.Password != "" {
		opt.Password = cfg.Password
	}
	if cfg.CAFile != "" {
		if opt.TLSConfig == nil {
			return nil, errors.New("cache: ca_file is set but the URL is not rediss://")
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cache: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cache: ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: opt.TLSConfig.ServerName}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = cfg.Timeout, cfg.Timeout, cfg.Timeout
	opt.MaxRetries = -1 // none
	return redis.NewClient(opt), nil
}

// casScript stores an entry when its version (ARGV[1]) is higher than the
// cached one. ARGV[4] is "set" (ARGV[2] is the row), "del" (a tombstone)
// or "refresh" (set, but only over an entry that exists, and over one of
// an equal version too: a backfill corrects stale entries without loading
// the whole view into the cache, including rows a rebuild with a changed
// Apply gave new contents at the same versions).
// It returns 1 when it stored, 0 when it kept what was there.
var casScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if cur then
  local c, v = tonumber(cur), tonumber(ARGV[1])
  if c > v or (c == v and ARGV[4] ~= 'refresh') then return 0 end
elseif ARGV[4] == 'refresh' then
  return 0
end
if ARGV[4] == 'del' then
  redis.call('HDEL', KEYS[1], 'row')
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'row', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// DefaultTTL is how long an entry lives by default: the seed's hour.
const DefaultTTL = time.Hour

// Sink keeps one view's rows under <prefix>:<key>. It is safe for
// concurrent use.
type Sink struct {
	rdb     *redis.Client
	prefix  string
	ttl     time.Duration
	view    string
	offsets string
}

// New returns the sink of view v writing through rdb (several sinks may
// share it) under prefix (the view's name when empty; orders use "order",
// the seed's order:<id>), with entries living ttl (DefaultTTL when 0).
func New(rdb *redis.Client, v projections.SinkView, prefix string, ttl time.Duration) *Sink {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if prefix == "" {
		prefix = v.Name
	}
	return &Sink{rdb: rdb, prefix: prefix, ttl: ttl, view: v.Name, offsets: "strata-offsets:" + v.Namespace + ":" + v.Name}
}

var _ projections.Sink = (*Sink)(nil)

// Name is "cache".
func (s *Sink) Name() string { return "cache" }

// Key is the Redis key of a row.
func (s *Sink) Key(key string) string { return s.prefix + ":" + key }

// TTL is how long an entry lives.
func (s *Sink) TTL() time.Duration { return s.ttl }

// Open loads the script and returns the offsets the cache has, kept
// without expiry in strata-offsets:<namespace>:<view>. A cache that lost
// them (a flushed or new Redis) reports none, and the runner's backfill
// then refreshes only the entries the cache holds.
func (s *Sink) Open(ctx context.Context, v projections.SinkView) (map[position.TP]int64, error) {
	if v.Name != s.view {
		return nil, fmt.Errorf("cache: the sink of view %s opened for view %s", s.view, v.Name)
	}
	if err := casScript.Load(ctx, s.rdb).Err(); err != nil {
		return nil, fmt.Errorf("cache: view %s: loading the script: %w", v.Name, err)
	}
	data, err := s.rdb.Get(ctx, s.offsets).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: view %s: reading the offsets: %w", v.Name, err)
	}
	var offs []offset
	if err := json.Unmarshal(data, &offs); err != nil {
		return nil, fmt.Errorf("cache: view %s: the offsets at %s: %w", v.Name, s.offsets, err)
	}
	out := map[position.TP]int64{}
	for _, o := range offs {
		out[position.TP{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	}
	return out, nil
}

type offset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Write compare-and-sets every changed row (a tombstone for a deleted
// one) in one pipeline, then stores the offsets. In a backfill, rows
// refresh only the entries the cache holds.
func (s *Sink) Write(ctx context.Context, b projections.SinkBatch) error {
	if len(b.Rows) > 0 {
		mode := "set"
		if b.Backfill {
			mode = "refresh"
		}
		_, err := s.cas(ctx, func(r projections.SinkRow) string {
			if r.Row == nil {
				return "del"
			}
			return mode
		}, b.Rows)
		if err != nil {
			return err
		}
	}
	if len(b.Offsets) == 0 {
		return nil
	}
	var offs []offset
	for tp, o := range b.Offsets {
		offs = append(offs, offset{tp.Topic, tp.Partition, o})
	}
	slices.SortFunc(offs, func(a, b offset) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	data, _ := json.Marshal(offs)
	if err := s.rdb.Set(ctx, s.offsets, data, 0).Err(); err != nil {
		return fmt.Errorf("cache: view %s: writing the offsets: %w", s.view, err)
	}
	return nil
}

// cas runs the script for rows in one pipeline, loading the script again
// once if Redis lost it (a restart).
func (s *Sink) cas(ctx context.Context, mode func(projections.SinkRow) string, rows []projections.SinkRow) ([]bool, error) {
	ttl := strconv.FormatInt(s.ttl.Milliseconds(), 10)
	for attempt := 0; ; attempt++ {
		cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, r := range rows {
				casScript.EvalSha(ctx, p, []string{s.Key(r.Key)}, strconv.FormatUint(r.Version, 10), []byte(r.Row), ttl, mode(r))
			}
			return nil
		})
		if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := casScript.Load(ctx, s.rdb).Err(); err != nil {
				return nil, fmt.Errorf("cache: view %s: loading the script: %w", s.view, err)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cache: view %s: writing %d rows: %w", s.view, len(rows), err)
		}
		stored := make([]bool, len(cmds))
		for i, c := range cmds {
			n, _ := c.(*redis.Cmd).Int64()
			stored[i] = n == 1
		}
		return stored, nil
	}
}

// Close closes the client. Several views' sinks may share one client:
// the first Close closes it, the others find it closed.
func (s *Sink) Close() error {
	if err := s.rdb.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return err
	}
	return nil
}

// Entry is a cached row.
type Entry struct {
	// Row is the row's JSON; nil for a tombstone (the row is deleted).
	Row     json.RawMessage
	Version uint64
}

// Get reads a row's entry; hit is false when the cache has none.
func (s *Sink) Get(ctx context.Context, key string) (e Entry, hit bool, err error) {
	vals, err := s.rdb.HMGet(ctx, s.Key(key), "v", "row").Result()
	if err != nil {
		return e, false, fmt.Errorf("cache: view %s: reading %s: %w", s.view, s.Key(key), err)
	}
	v, ok := vals[0].(string)
	if !ok {
		return e, false, nil
	}
	if e.Version, err = strconv.ParseUint(v, 10, 64); err != nil {
		return e, false, fmt.Errorf("cache: view %s: %s has version %q: %w", s.view, s.Key(key), v, err)
	}
	if row, ok := vals[1].(string); ok {
		e.Row = json.RawMessage(row)
	}
	return e, true, nil
}

// Fill caches a row read from elsewhere on a miss, with the version it
// was read at, unless the cache has that version or a newer one by now
// (the projection wrote it since). stored says whether it did.
func (s *Sink) Fill(ctx context.Context, key string, version uint64, row json.RawMessage) (stored bool, err error) {
	if row == nil {
		return false, errors.New("cache: Fill of a nil row")
	}
	st, err := s.cas(ctx, func(projections.SinkRow) string { return "set" }, []projections.SinkRow{{Key: key, Version: version, Row: row}})
	if err != nil {
		return false, err
	}
	return st[0], nil
}

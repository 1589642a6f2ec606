package ssh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mno-sh/mno/engine/runctx"
)

// defaultKeepalive is the keepalive interval; $MNO_SSH_KEEPALIVE overrides it.
const defaultKeepalive = 15 * time.Second

// poolKey is the run resource key of the connection pool.
type poolKey struct{}

// pool holds the connections of one run, one per user@host:port, and the
// control plane identity they authenticate with. It is closed with the run.
type pool struct {
	run *runctx.Run

	mu     sync.Mutex
	conns  map[string]*dialing
	closed bool

	idOnce sync.Once
	id     *identity
	idErr  error
	// others are the identities of connects given identity=, by file list.
	others map[string]*identity
}

// dialing is a connection being made or made: threads that connect to the
// same host at the same time share one dial.
type dialing struct {
	done     chan struct{}
	c        *conn
	recorded bool
	err      error
}

func poolOf(r *runctx.Run) *pool {
	p, _ := runctx.Resource(r, poolKey{}, func() (*pool, error) {
		p := &pool{run: r, conns: map[string]*dialing{}}
		r.OnClose(p.close)
		return p, nil
	})
	return p
}

// identity loads the control plane identity once per run.
func (p *pool) identity() (*identity, error) {
	p.idOnce.Do(func() { p.id, p.idErr = loadIdentity(p.run.Config) })
	return p.id, p.idErr
}

// identityFiles loads the identity made of files once per run.
func (p *pool) identityFiles(files []string) (*identity, error) {
	key := strings.Join(files, "\x00")
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.others[key]; ok {
		return id, nil
	}
	id, err := loadIdentityFiles(files)
	if err != nil {
		return nil, err
	}
	if p.others == nil {
		p.others = map[string]*identity{}
	}
	p.others[key] = id
	return id, nil
}

// keepalive is the interval from $MNO_SSH_KEEPALIVE, or the default.
func (p *pool) keepalive() (time.Duration, error) {
	s := p.run.Config.Getenv("MNO_SSH_KEEPALIVE")
	if s == "" {
		return defaultKeepalive, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("MNO_SSH_KEEPALIVE=%q is not a positive duration like \"15s\"", s)
	}
	return d, nil
}

// get returns the connection for key, dialing it unless a live one exists
// or is being dialed. A failed or dead connection is dialed again, so a
// script can retry a host that rebooted. reused reports an existing one.
func (p *pool) get(ctx context.Context, key string, dial func() (*conn, bool, error)) (c *conn, recorded, reused bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, false, errors.New("the run has ended")
	}
	d, ok := p.conns[key]
	if ok {
		select {
		case <-d.done:
			ok = d.err == nil && !d.c.dead()
		default:
		}
	}
	if !ok {
		d = &dialing{done: make(chan struct{})}
		p.conns[key] = d
		p.mu.Unlock()
		d.c, d.recorded, d.err = dial()
		close(d.done)
		p.mu.Lock()
		if p.closed && d.c != nil {
			// The run ended while dialing.
			go d.c.close()
		}
		p.mu.Unlock()
		return d.c, d.recorded, false, d.err
	}
	p.mu.Unlock()
	select {
	case <-d.done:
	case <-ctx.Done():
		return nil, false, false, context.Cause(ctx)
	}
	if d.err != nil {
		return nil, false, false, d.err
	}
	return d.c, false, true, d.c.alive()
}

// close closes every connection, those dialed through a jump host first.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var conns []*conn
	for _, d := range p.conns {
		select {
		case <-d.done:
			if d.c != nil {
				conns = append(conns, d.c)
			}
		default:
		}
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		if c.jump != nil {
			wg.Go(c.close)
		}
	}
	wg.Wait()
	for _, c := range conns {
		if c.jump == nil {
			wg.Go(c.close)
		}
	}
	wg.Wait()
	if p.id != nil {
		p.id.close()
	}
}

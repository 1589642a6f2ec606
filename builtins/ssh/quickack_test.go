package ssh

import (
	"context"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
)

// BenchmarkFirstExec measures `exec true` on a fresh connection (the dial
// is not timed), with and without re-arming TCP_QUICKACK after each read,
// and on a connection that already ran a command. The performance facts in
// ARCHITECTURE.md expect about 47 ms without quick ACKs and 4 ms with them.
//
//	go test -run '^$' -bench FirstExec -benchtime 50x ./builtins/ssh/
func BenchmarkFirstExec(b *testing.B) {
	signer, line := hoststest.NewKey(b)
	lab := hoststest.Start(b, 1, hosts.AuthorizedKeys(line))
	h := lab.Hosts()[0]
	ctx := context.Background()
	dialHost := func(b *testing.B, quick bool) *conn {
		c, _, err := dial(ctx, ctx, dialSpec{
			user: "root", hostport: h.Endpoint(), timeout: 10 * time.Second,
			policy: &hostKeyPolicy{pinKey: h.PublicKey()}, id: &identity{signers: []xssh.Signer{signer}},
			keepalive: time.Minute, quickAck: quick,
		})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	run := func(b *testing.B, c *conn) {
		out, err := c.exec(ctx, remoteCmd{argv: []string{"true"}})
		if err != nil || out.code != 0 {
			b.Fatalf("exec true: %v (exit %d)", err, out.code)
		}
	}
	for _, quick := range []bool{true, false} {
		name := "quickack"
		if !quick {
			name = "no-quickack"
		}
		b.Run(name+"/first", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				c := dialHost(b, quick)
				b.StartTimer()
				run(b, c)
				b.StopTimer()
				c.close()
				b.StartTimer()
			}
		})
		b.Run(name+"/reused", func(b *testing.B) {
			c := dialHost(b, quick)
			defer c.close()
			run(b, c)
			for b.Loop() {
				run(b, c)
			}
		})
	}
}

package ssh

import (
	"os"
	"testing"

	"github.com/pkg/sftp"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
)

// TestSFTPCreatesPrivate (issue 13 item 4): on a real OpenSSH sftp-server,
// a file mno's SFTP client creates is 0600 the moment it exists — before any
// chmod — while the stock client's is 0644 (sshd's umask), which is what a
// temporary file of a secret would have been until its chmod.
func TestSFTPCreatesPrivate(t *testing.T) {
	key, line := hoststest.NewKey(t)
	lab := hoststest.Start(t, 1, hosts.AuthorizedKeys(line))
	h := lab.Hosts()[0]
	client := hoststest.Dial(t, h, "mno", key)

	c := &conn{client: client}
	ours, err := c.startSFTP()
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	stock, err := sftp.NewClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer stock.Close()

	for _, tc := range []struct {
		cl   *sftp.Client
		path string
		want os.FileMode
	}{
		{ours, "/home/mno/ours.tmp", 0o600},
		{stock, "/home/mno/stock.tmp", 0o644},
	} {
		f, err := tc.cl.OpenFile(tc.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := tc.cl.Lstat(tc.path) // before anything else: as created
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.want {
			t.Errorf("%s: created with mode %o, want %o", tc.path, fi.Mode().Perm(), tc.want)
		}
	}
	// Other packets pass through: a write and read back on the same client.
	f, err := ours.Create("/home/mno/data")
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i)
	}
	if _, err := f.Write(big); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := h.ReadFile("/home/mno/data")
	if err != nil || string(got) != string(big) {
		t.Errorf("content through the writer differs (%d bytes, %v)", len(got), err)
	}
}

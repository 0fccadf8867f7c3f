package userfile_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rlogin-go/rlogin/internal/userfile"
)

// A user's file is read under the login's deadline, with the user's rights; a /proc file behind
// it is refused unread.
func ExampleLoad() {
	var files userfile.Reader // one per daemon
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := userfile.Load(ctx, &files, os.Geteuid(), func() ([]byte, error) {
		data, _, err := userfile.ReadFile("/proc/self/status", 1<<20)
		return data, err
	})
	fmt.Println(errors.Is(err, userfile.ErrFileSystem))
	// Output:
	// true
}

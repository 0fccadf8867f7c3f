package logsink_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/rlogin-go/rlogin/internal/logsink"
)

// A daemon logs to a file, which it reopens after logrotate moved it.
func Example() {
	dir, err := os.MkdirTemp("", "logsink")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "daemon.log")
	sink, err := logsink.Open(logsink.Options{Level: slog.LevelInfo, Format: "json", File: path}, os.Stderr, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Close()
	sink.Logger().Info("serving", "addr", ":5513")
	_ = os.Rename(path, path+".1") // logrotate
	if err := sink.Reopen(); err != nil {
		fmt.Println(err)
	}
	sink.Logger().Debug("not logged: below the level")
	sink.SetLevel(slog.LevelDebug)
	sink.Logger().Debug("logged now")
	rotated, _ := os.ReadFile(path + ".1")
	current, _ := os.ReadFile(path)
	fmt.Println(len(rotated) > 0, len(current) > 0)
	// Output: true true
}

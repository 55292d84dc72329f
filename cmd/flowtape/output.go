package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeOutput hands write standard output for "" or "-", else a file
// beside output that is renamed to it when complete: a failed command
// leaves no half-written file that looks whole. The file is readable by
// its owner only, like the recordings it comes from. An output that exists
// and is not a regular file (/dev/null, /dev/stdout, a named pipe) is
// written as it is: renaming onto it would replace the device or pipe.
func writeOutput(stdout io.Writer, output string, write func(io.Writer) error) error {
	if output == "" || output == "-" {
		return write(stdout)
	}
	if fi, err := os.Stat(output); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return fmt.Errorf("-o %s: is a directory; name a file", output)
		}
		f, err := os.OpenFile(output, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("-o %s: %w", output, err)
		}
		return errors.Join(write(f), f.Close())
	}
	tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*.tmp")
	if err != nil {
		return fmt.Errorf("-o %s: %w", output, err)
	}
	defer os.Remove(tmp.Name())
	err = write(tmp)
	err = errors.Join(err, tmp.Close())
	if err == nil {
		if err = os.Rename(tmp.Name(), output); err != nil {
			err = fmt.Errorf("-o %s: %w", output, err)
		}
	}
	return err
}

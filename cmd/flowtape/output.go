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
// its owner only, like the recordings it comes from.
func writeOutput(stdout io.Writer, output string, write func(io.Writer) error) error {
	if output == "" || output == "-" {
		return write(stdout)
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

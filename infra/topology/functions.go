package topology

import (
	"fmt"
	"os"
	"path/filepath"
)

// FunctionDirs lists the functions in the tree at root: the directories
// under functions/, sorted. Checks of the deployment manifests compare
// against it, so a new function cannot be forgotten there.
func FunctionDirs(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		return nil, fmt.Errorf("topology.FunctionDirs: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

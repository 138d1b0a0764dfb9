// Command copyright writes the Debian copyright file of the linnet package:
// linnet's licence, then the licence texts of the Go standard library and of
// every module linked into ./cmd/linnet for the GOOS and GOARCH in the
// environment, as each module ships them in the module cache (LICENSE,
// COPYING, NOTICE, PATENTS). scripts/package.sh runs it for each
// architecture, so the list follows go.mod instead of being kept by hand.
// A linked module without a licence file, or replaced by another, is an
// error.
//
//	go run ./scripts/copyright -goarch arm64 -o dist/.stage/copyright
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// module is one entry of the file.
type module struct {
	path, version, dir string
}

func main() {
	out := flag.String("o", "", "file to write (default: standard output)")
	pkg := flag.String("pkg", "./cmd/linnet", "the package whose linked modules are listed")
	goarch := flag.String("goarch", "", "GOARCH of the binary (default: the environment's)")
	goarm := flag.String("goarm", "", "GOARM of the binary, with -goarch arm")
	flag.Parse()
	var env []string
	if *goarch != "" {
		env = append(env, "GOOS=linux", "GOARCH="+*goarch, "GOARM="+*goarm)
	}
	b, err := generate(*pkg, env)
	if err == nil {
		if *out == "" {
			_, err = os.Stdout.Write(b)
		} else {
			err = os.WriteFile(*out, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "copyright:", err)
		os.Exit(1)
	}
}

// linked returns the main module and the other modules providing packages
// that pkg imports, directly or not, sorted by path.
func linked(pkg string, env []string) (self module, deps []module, err error) {
	cmd := exec.Command("go", "list", "-deps",
		"-f", "{{with .Module}}{{.Path}}\t{{.Version}}\t{{.Dir}}\t{{.Main}}{{with .Replace}}\t{{.Path}} {{.Version}}{{end}}{{end}}", pkg)
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return self, nil, fmt.Errorf("go list %s: %w", pkg, err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 || seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		if len(f) > 4 {
			// A replaced module is not what its path promises: say so.
			return self, nil, fmt.Errorf("%s is replaced by %s: its licence notice would name the wrong code", f[0], f[4])
		}
		m := module{path: f[0], version: f[1], dir: f[2]}
		if f[3] == "true" {
			self = m
			continue
		}
		deps = append(deps, m)
	}
	if self.dir == "" {
		return self, nil, fmt.Errorf("go list %s: no main module", pkg)
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].path < deps[j].path })
	return self, deps, nil
}

// licenceFiles returns the licence and notice files at the top of dir.
func licenceFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range ents {
		name := strings.ToUpper(e.Name())
		if e.Type().IsRegular() && (strings.HasPrefix(name, "LICENSE") || strings.HasPrefix(name, "LICENCE") ||
			strings.HasPrefix(name, "COPYING") || strings.HasPrefix(name, "NOTICE") || name == "PATENTS" ||
			// Eclipse projects ship the licence texts their LICENSE names.
			strings.HasPrefix(name, "EPL-V") || strings.HasPrefix(name, "EDL-V")) {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	return files, nil
}

// kind names the licence a text carries, or "see the text below".
func kind(text string) string {
	t := strings.Join(strings.Fields(text), " ")
	switch {
	case strings.Contains(t, "Eclipse Public License - v 2.0"):
		return "EPL-2.0"
	case strings.Contains(t, "Eclipse Distribution License - v 1.0"):
		return "EDL-1.0 (BSD-3-Clause)"
	case strings.Contains(t, "Apache License") && strings.Contains(t, "Version 2.0"):
		return "Apache-2.0"
	case strings.Contains(t, "Mozilla Public License Version 2.0"), strings.Contains(t, "Mozilla Public License, version 2.0"):
		return "MPL-2.0"
	case strings.Contains(t, "Permission is hereby granted, free of charge"):
		return "MIT"
	case strings.Contains(t, "Permission to use, copy, modify, and/or distribute this software for any purpose"),
		strings.Contains(t, "Permission to use, copy, modify, and distribute this software for any purpose"):
		return "ISC"
	case strings.Contains(t, "Redistribution and use in source and binary forms") &&
		strings.Contains(t, "Neither the name"), strings.Contains(t, "names of its contributors may be used"):
		return "BSD-3-Clause"
	case strings.Contains(t, "Redistribution and use in source and binary forms"):
		return "BSD-2-Clause"
	}
	return "see the text below"
}

// section writes one module's heading and its licence texts.
func section(w *bytes.Buffer, title, dir string) error {
	files, err := licenceFiles(dir)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%s: no LICENSE, COPYING or NOTICE file in %s", title, dir)
	}
	var texts [][]byte
	var kinds []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		texts = append(texts, b)
		if base := strings.ToUpper(filepath.Base(f)); !strings.HasPrefix(base, "NOTICE") && base != "PATENTS" {
			if k := kind(string(b)); !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	fmt.Fprintf(w, "\n%s\n%s\nLicence: %s\n", strings.Repeat("=", 78), title, strings.Join(kinds, ", "))
	for i, f := range files {
		fmt.Fprintf(w, "\n--- %s\n\n", filepath.Base(f))
		w.Write(bytes.TrimRight(texts[i], "\n"))
		w.WriteString("\n")
	}
	return nil
}

func generate(pkg string, env []string) ([]byte, error) {
	self, deps, err := linked(pkg, env)
	if err != nil {
		return nil, err
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT: %w", err)
	}
	goversion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOVERSION: %w", err)
	}
	var w bytes.Buffer
	fmt.Fprintf(&w, "linnet: %s\n\n", self.path)
	w.WriteString("The licences of linnet and of everything linked into /usr/bin/linnet: the Go\n" +
		"standard library and runtime, and each Go module below at the version built.\n" +
		"Generated from go.mod by scripts/copyright when the package was built.\n")
	if err := section(&w, "linnet", self.dir); err != nil {
		return nil, err
	}
	if err := section(&w, "Go standard library and runtime "+strings.TrimSpace(string(goversion)),
		strings.TrimSpace(string(goroot))); err != nil {
		return nil, err
	}
	for _, m := range deps {
		if err := section(&w, m.path+" "+m.version, m.dir); err != nil {
			return nil, err
		}
	}
	return w.Bytes(), nil
}

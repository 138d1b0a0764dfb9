package main

import (
	"os"
	"strings"
	"testing"
)

func TestKind(t *testing.T) {
	for text, want := range map[string]string{
		"Apache License\n Version 2.0, January 2004":                                "Apache-2.0",
		"Permission is hereby granted, free of charge, to any person":               "MIT",
		"Redistribution and use in source and binary forms ... Neither the name of": "BSD-3-Clause",
		"Redistribution and use in source and binary forms, with or without":        "BSD-2-Clause",
		"Mozilla Public License Version 2.0":                                        "MPL-2.0",
		"All rights reserved.":                                                      "see the text below",
	} {
		if got := kind(text); got != want {
			t.Errorf("kind(%.40q) = %s, want %s", text, got, want)
		}
	}
}

// linnet's own LICENSE comes first, then Go's, then the modules, each with
// its licence text. (scripts/ops-test.sh checks the packaged file against
// every module `go version -m` finds in the packaged binary.)
func TestGenerate(t *testing.T) {
	b, err := generate("../../cmd/linnet", nil)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	license, err := os.ReadFile("../../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	order := []string{"\nlinnet\nLicence: Apache-2.0\n", string(license), "\nGo standard library and runtime go",
		"\ngithub.com/spf13/cobra v", "Apache License", "\ngo.etcd.io/bbolt v", "Permission is hereby granted"}
	at := 0
	for _, s := range order {
		i := strings.Index(text[at:], s)
		if i < 0 {
			t.Fatalf("%.50q missing or out of order", s)
		}
		at += i
	}
	if _, err := generate("./no/such/package", nil); err == nil {
		t.Error("generate accepted a package that does not exist")
	}
}

// Command re2 reports which names each pattern matches, as CEL's matches() does in the
// apiserver (Go's regexp: RE2 syntax, unanchored search).
//
// stdin:  {"patterns": ["..."], "names": ["..."]}
// stdout: [[true, false, ...] per pattern]
package main

import (
	"encoding/json"
	"os"
	"regexp"
)

func main() {
	var input struct {
		Patterns []string `json:"patterns"`
		Names    []string `json:"names"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&input); err != nil {
		panic(err)
	}
	results := make([][]bool, len(input.Patterns))
	for i, pattern := range input.Patterns {
		re := regexp.MustCompile(pattern)
		results[i] = make([]bool, len(input.Names))
		for j, name := range input.Names {
			results[i][j] = re.MatchString(name)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		panic(err)
	}
}

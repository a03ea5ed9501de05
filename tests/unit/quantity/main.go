// Command quantity parses each string as the apiserver does (resource.ParseQuantity) and
// reports its exact value and the canonical form the apiserver stores, or null when
// Kubernetes refuses it.
//
// stdin:  ["1Gi", "0.5", "1e3", ...]
// stdout: [["1073741824", "1Gi"], ["0.500", "500m"], ["1000", "1k"], null, ...]
package main

import (
	"encoding/json"
	"os"

	"k8s.io/apimachinery/pkg/api/resource"
)

func main() {
	var texts []string
	if err := json.NewDecoder(os.Stdin).Decode(&texts); err != nil {
		panic(err)
	}
	answers := make([]*[2]string, len(texts))
	for i, text := range texts {
		if quantity, err := resource.ParseQuantity(text); err == nil {
			// String() would return the text as given; a fresh Quantity is canonicalised.
			fresh := resource.NewDecimalQuantity(*quantity.AsDec(), quantity.Format)
			answers[i] = &[2]string{quantity.AsDec().String(), fresh.String()}
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(answers); err != nil {
		panic(err)
	}
}

// Command kstatus prints what sigs.k8s.io/cli-utils' kstatus (the library Flux and
// kubectl-based tools use) computes for one object given as JSON on stdin:
// {"status":"Current","message":"..."}.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	// UnmarshalJSON keeps integers as int64, as the apiserver's own decoding does.
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(data); err != nil {
		fail(err)
	}
	result, err := status.Compute(object)
	if err != nil {
		fail(err)
	}
	out, _ := json.Marshal(map[string]string{"status": result.Status.String(), "message": result.Message})
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

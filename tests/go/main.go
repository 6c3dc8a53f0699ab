// h2k-go runs an Artifact Manifest through libhyper2kvm with cgo, the way HyperSDK links the
// engine, and prints one "Output: PATH" line per artifact. Built and run by scripts/test-c.sh.
//
//	h2k-go MANIFEST
package main

/*
#cgo pkg-config: hyper2kvm
#include <stdlib.h>
#include "hyper2kvm.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"unsafe"
)

// runManifest runs the manifest and returns the JSON result, or an error carrying the
// library's code and error JSON.
func runManifest(path string) (map[string]any, error) {
	var opts *C.hyper2kvm_options
	if r := C.hyper2kvm_options_new(&opts); r != C.HYPER2KVM_RESULT_OK {
		return nil, fmt.Errorf("options_new: %d", r)
	}
	defer C.hyper2kvm_options_free(opts)
	var job *C.hyper2kvm_job
	if r := C.hyper2kvm_job_new(opts, &job); r != C.HYPER2KVM_RESULT_OK {
		return nil, fmt.Errorf("job_new: %d", r)
	}
	defer C.hyper2kvm_job_free(job)

	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var out *C.char
	r := C.hyper2kvm_run_manifest(job, cpath, &out)
	text := C.GoString(out)
	C.hyper2kvm_string_free(out)
	var doc map[string]any
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("result is not JSON: %v", err)
	}
	if r != C.HYPER2KVM_RESULT_OK {
		var buf [128]C.char
		C.hyper2kvm_strerror(C.uint32_t(r), &buf[0], C.size_t(len(buf)))
		return nil, fmt.Errorf("%s (%s): %v", C.GoString(&buf[0]), doc["kind"], doc["message"])
	}
	return doc, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: h2k-go MANIFEST")
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "libhyper2kvm %s\n", C.GoString(C.hyper2kvm_version()))
	doc, err := runManifest(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "h2k-go:", err)
		os.Exit(1)
	}
	outputs, _ := doc["outputs"].([]any)
	for _, o := range outputs {
		fmt.Printf("Output: %v\n", o)
	}
	if ok, _ := doc["success"].(bool); !ok {
		os.Exit(1)
	}
}

// A Go net/http server as any is written: it listens on PORT (and HOST), which
// fastfn --format server gives it, and serves many requests at once.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

func hello(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		name := r.URL.Query().Get("name")
		if name == "" {
			name = "world"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello %s from pid %d\n", name, os.Getpid())
	case http.MethodPost:
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := io.Copy(w, r.Body); err != nil {
			log.Printf("echo: %v", err)
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func main() {
	host, port := os.Getenv("HOST"), os.Getenv("PORT")
	if port == "" {
		host, port = "127.0.0.1", "8080"
	}
	http.HandleFunc("/", hello)
	log.Fatal(http.ListenAndServe(net.JoinHostPort(host, port), nil))
}

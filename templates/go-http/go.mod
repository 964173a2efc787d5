module fastfn.dev/templates/go-http

go 1.19

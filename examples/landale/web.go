package main

import (
	"embed"
	"io/fs"
)

// webFiles holds the pages (overlay.html, dashboard.html and their assets)
// served at the root of the server.
//
//go:embed web/*
var webFiles embed.FS

// webFS returns the pages with web/ stripped.
func webFS() fs.FS {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // "web" is a valid path: cannot happen
	}
	return sub
}

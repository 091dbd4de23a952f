module pytest-chaos.dev/tools/images/pause

go 1.22

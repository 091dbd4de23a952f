module pytest-chaos.dev/tools/images/hold

go 1.22

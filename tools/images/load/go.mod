module pytest-chaos.dev/tools/images/load

go 1.22

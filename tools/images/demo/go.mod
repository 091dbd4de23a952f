module pytest-chaos.dev/tools/images/demo

go 1.22

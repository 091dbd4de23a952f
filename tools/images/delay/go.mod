module pytest-chaos.dev/tools/images/delay

go 1.22

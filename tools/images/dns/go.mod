module pytest-chaos.dev/tools/images/dns

go 1.22

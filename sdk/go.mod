module github.com/sollwert/sollwert/sdk

go 1.24

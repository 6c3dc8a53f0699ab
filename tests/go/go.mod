module hyper2kvm.example/h2k-go

go 1.19

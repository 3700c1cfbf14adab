# container.mk — the container image, built and run for real (Docker, or podman where no
# Docker engine answers; scripts/container-lib.sh).
#
#   make container-image   daed:local from the Dockerfile; the base images are pulled, or
#                          made from Debian's packages where no registry answers
#                          (scripts/container-base)
#   make container-test    the image, then scripts/container-smoke (endpoints, a denoise per
#                          model kind, health check, non-root, read-only root with no
#                          capabilities, SIGTERM with a request in flight, size <= 120 MB)
#                          and tests/deploy/compose.sh (docker/compose.yaml: three replicas
#                          behind nginx, a replica killed and one drained under load)
#   make k8s-validate      docker/k8s and the KServe manifests against the Kubernetes API
#                          schemas (scripts/validate-k8s; npm kubernetes-models)

.PHONY: container-image container-test k8s-validate

## container-image: build the image daed:local (base images bootstrapped when no registry answers)
container-image:
	bash scripts/container-build daed:local

## container-test: build the image, run container-smoke and the compose failover test
## (COMPOSE_TEST=0: without the failover test)
COMPOSE_TEST ?= 1
container-test:
	bash scripts/container-base
	bash scripts/container-smoke daed:local
	@if [ "$(COMPOSE_TEST)" = 0 ]; then echo "skip: compose failover test (COMPOSE_TEST=0)"; \
	else bash tests/deploy/compose.sh; fi

## k8s-validate: validate docker/k8s and the KServe manifests against the Kubernetes API schemas
k8s-validate:
	bash scripts/validate-k8s

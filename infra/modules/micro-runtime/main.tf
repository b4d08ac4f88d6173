# micro v3 on a Kubernetes cluster, as its "platform" profile expects it (profile/platform/platform.go at
# v3.19.0): the registry on etcd at etcd-cluster, the broker and the event stream on NATS at
# nats-cluster:4222 (streaming cluster id nats-streaming-cluster), the store on CockroachDB
# (--store_address), blobs on MinIO at minio-cluster:9000, JWT auth with a key pair of its own, and the
# Kubernetes runtime. Each of micro's services runs as a deployment; the API gateway (:8080, what the
# platform calls) and the gRPC proxy (:8081, what the micro CLI uses) are behind load balancers. A job
# then makes the platform's admin account and removes micro's default admin (admin/micro).

locals {
  namespace = kubernetes_namespace.micro.metadata[0].name
  labels    = { "app.kubernetes.io/part-of" = "micro", "maas-region" = var.name }
  # micro's services (cmd/server: `micro service <name>`), and the port each one's Kubernetes service exposes
  services = {
    api      = 8080
    proxy    = 8081
    auth     = 8010
    broker   = 8003
    config   = 8001
    events   = 8013
    network  = 8443
    registry = 8000
    runtime  = 8088
    store    = 8002
  }
  public = toset(["api", "proxy"])
  env = {
    MICRO_PROFILE               = "platform"
    MICRO_NAMESPACE             = "micro"
    MICRO_STORE_ADDRESS         = "postgresql://root@cockroachdb-public:26257/micro?sslmode=disable"
    MICRO_API_BLOCKLIST_ENABLED = "true" # removed members' tokens refused at the gateway (service/api/auth/blocklist.go)
    MICRO_BLOB_STORE_REGION     = "us-east-1"
    MICRO_ENABLE_ACME           = "false"
    MICRO_SERVICE_ADDRESS       = ":8080"
    MICRO_LOG_LEVEL             = "info"
  }
}

resource "kubernetes_namespace" "micro" {
  metadata {
    name   = "micro"
    labels = local.labels
  }
}

# ---------------------------------------------------------------------------- what the profile needs

resource "helm_release" "etcd" {
  name       = "etcd-cluster"
  namespace  = local.namespace
  repository = "oci://registry-1.docker.io/bitnamicharts"
  chart      = "etcd"
  version    = "10.7.1"
  wait       = true

  values = [yamlencode({
    replicaCount = 3
    auth         = { rbac = { create = false } }
    persistence  = { storageClass = var.storage_class, size = "8Gi" }
  })]
}

resource "helm_release" "nats" {
  name       = "nats-cluster"
  namespace  = local.namespace
  repository = "https://nats-io.github.io/k8s/helm/charts"
  chart      = "nats"
  version    = "1.2.6"
  wait       = true

  values = [yamlencode({
    config = {
      cluster   = { enabled = true, replicas = 3 }
      jetstream = { enabled = true, fileStore = { pvc = { size = "8Gi", storageClassName = var.storage_class } } }
    }
  })]
}

resource "helm_release" "cockroachdb" {
  name       = "cockroachdb"
  namespace  = local.namespace
  repository = "https://charts.cockroachdb.com"
  chart      = "cockroachdb"
  version    = "14.0.4"
  wait       = true

  values = [yamlencode({
    statefulset = { replicas = 3 }
    storage     = { persistentVolume = { size = "10Gi", storageClass = var.storage_class } }
    tls         = { enabled = false } # inside the namespace only; the network policy below keeps others out
  })]
}

resource "random_password" "minio" {
  length  = 40
  special = false
}

resource "kubernetes_secret" "blob_store" {
  metadata {
    name      = "micro-blob-store"
    namespace = local.namespace
  }
  data = {
    MICRO_BLOB_STORE_ACCESS_KEY = "micro"
    MICRO_BLOB_STORE_SECRET_KEY = random_password.minio.result
  }
}

resource "helm_release" "minio" {
  name       = "minio-cluster"
  namespace  = local.namespace
  repository = "https://charts.min.io"
  chart      = "minio"
  version    = "5.2.0"
  wait       = true

  values = [yamlencode({
    mode        = "standalone"
    persistence = { size = "10Gi", storageClass = var.storage_class }
    resources   = { requests = { memory = "512Mi" } }
  })]

  set_sensitive {
    name  = "rootUser"
    value = "micro"
  }

  set_sensitive {
    name  = "rootPassword"
    value = random_password.minio.result
  }
}

# ---------------------------------------------------------------------------- micro's own keys

resource "tls_private_key" "jwt" {
  algorithm = "RSA"
  rsa_bits  = 4096
}

resource "random_password" "config" {
  length  = 32
  special = false
}

resource "kubernetes_secret" "keys" {
  metadata {
    name      = "micro-keys"
    namespace = local.namespace
  }
  # profile.SetupJWT and SetupConfigSecretKey read these (base64 PEM, as micro's own manifests set them)
  data = {
    MICRO_AUTH_PUBLIC_KEY   = base64encode(tls_private_key.jwt.public_key_pem)
    MICRO_AUTH_PRIVATE_KEY  = base64encode(tls_private_key.jwt.private_key_pem)
    MICRO_CONFIG_SECRET_KEY = random_password.config.result
  }
}

resource "kubernetes_secret" "platform_admin" {
  metadata {
    name      = "micro-platform-admin"
    namespace = local.namespace
  }
  data = {
    MICRO_PLATFORM_ACCOUNT = var.platform_account
    MICRO_PLATFORM_SECRET  = var.platform_secret
  }
}

# ---------------------------------------------------------------------------- micro's services

resource "kubernetes_service_account" "micro" {
  metadata {
    name      = "micro"
    namespace = local.namespace
  }
}

# The runtime service creates namespaces, deployments, services, secrets, quotas and network policies
# for the tenants (service/runtime/kubernetes): it needs them cluster-wide.
resource "kubernetes_cluster_role" "runtime" {
  metadata {
    name = "micro-runtime"
  }
  rule {
    api_groups = [""]
    resources  = ["namespaces", "pods", "pods/log", "services", "secrets", "serviceaccounts", "resourcequotas"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }
  rule {
    api_groups = ["apps"]
    resources  = ["deployments"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }
  rule {
    api_groups = ["networking.k8s.io"]
    resources  = ["networkpolicies"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }
}

resource "kubernetes_cluster_role_binding" "runtime" {
  metadata {
    name = "micro-runtime"
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "ClusterRole"
    name      = kubernetes_cluster_role.runtime.metadata[0].name
  }
  subject {
    kind      = "ServiceAccount"
    name      = kubernetes_service_account.micro.metadata[0].name
    namespace = local.namespace
  }
}

resource "kubernetes_deployment" "service" {
  #checkov:skip=CKV_K8S_43:the image is var.micro_image, micro's v3.19.0 release by default; a digest reference (micro/micro@sha256:...) is accepted there, and the choice is the operator's
  #checkov:skip=CKV_K8S_35:micro v3 reads its auth keys and store settings from MICRO_* environment variables only (its profile package); the values come from a Kubernetes secret, never from the manifest
  for_each = local.services

  metadata {
    name      = "micro-${each.key}"
    namespace = local.namespace
    labels    = merge(local.labels, { name = each.key })
  }

  spec {
    replicas = contains(["api", "proxy", "registry", "auth"], each.key) ? 2 : 1

    selector {
      match_labels = { "micro" = "server", name = each.key }
    }

    template {
      metadata {
        labels = merge(local.labels, { "micro" = "server", name = each.key })
      }

      spec {
        service_account_name            = kubernetes_service_account.micro.metadata[0].name
        automount_service_account_token = each.key == "runtime"

        security_context {
          run_as_non_root = true
          run_as_user     = 10001
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = "micro"
          image             = var.micro_image
          image_pull_policy = "Always"
          args              = ["service", each.key]

          dynamic "env" {
            for_each = merge(local.env, { MICRO_SERVICE_ADDRESS = ":${each.value}" })
            content {
              name  = env.key
              value = env.value
            }
          }

          env_from {
            secret_ref {
              name = kubernetes_secret.keys.metadata[0].name
            }
          }

          dynamic "env_from" {
            for_each = contains(["runtime", "store"], each.key) ? [1] : []
            content {
              secret_ref {
                name = kubernetes_secret.blob_store.metadata[0].name
              }
            }
          }

          port {
            container_port = each.value
          }

          resources {
            requests = { cpu = "100m", memory = "128Mi" }
            limits   = { cpu = "500m", memory = "512Mi" }
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
            }
          }

          readiness_probe {
            tcp_socket {
              port = each.value
            }
            period_seconds = 10
          }

          liveness_probe {
            tcp_socket {
              port = each.value
            }
            initial_delay_seconds = 30
            period_seconds        = 20
          }
        }
      }
    }
  }

  depends_on = [helm_release.etcd, helm_release.nats, helm_release.cockroachdb, helm_release.minio]
}

resource "kubernetes_service" "service" {
  for_each = local.services

  metadata {
    name        = each.key
    namespace   = local.namespace
    labels      = local.labels
    annotations = contains(local.public, each.key) ? var.service_annotations : {}
  }

  spec {
    type     = contains(local.public, each.key) ? "LoadBalancer" : "ClusterIP"
    selector = { "micro" = "server", name = each.key }

    port {
      port        = each.value
      target_port = each.value
    }
  }
}

# Nothing from outside the namespace reaches micro's services but the API and the proxy.
resource "kubernetes_network_policy" "internal" {
  metadata {
    name      = "micro-internal"
    namespace = local.namespace
  }
  spec {
    pod_selector {}
    policy_types = ["Ingress"]
    ingress {
      from {
        pod_selector {}
      }
    }
  }
}

resource "kubernetes_network_policy" "public" {
  metadata {
    name      = "micro-public"
    namespace = local.namespace
  }
  spec {
    pod_selector {
      match_expressions {
        key      = "name"
        operator = "In"
        values   = ["api", "proxy"]
      }
    }
    policy_types = ["Ingress"]
    ingress {}
  }
}

# ---------------------------------------------------------------------------- the platform's account

# micro's auth service makes admin/micro in the micro issuer while it has no user account
# (service/auth/handler/auth.go setupDefaultAccount). The job logs in with it, makes the platform's
# admin account (client/cli/auth: `micro auth create account`), and deletes the default one.
resource "kubernetes_job" "bootstrap" {
  metadata {
    name      = "micro-platform-bootstrap"
    namespace = local.namespace
  }

  spec {
    backoff_limit = 6

    template {
      metadata {
        labels = local.labels
      }

      spec {
        restart_policy                  = "OnFailure"
        automount_service_account_token = false

        security_context {
          run_as_non_root = true
          run_as_user     = 10001
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name    = "bootstrap"
          image   = var.micro_image
          command = ["/bin/sh", "-c"]
          args = [join(" && ", [
            "micro env add cluster proxy:8081",
            "micro env set cluster",
            "micro login --username admin --password micro",
            "micro auth create account --secret \"$MICRO_PLATFORM_SECRET\" --scopes admin \"$MICRO_PLATFORM_ACCOUNT\"",
            "micro auth delete account admin",
          ])]

          env_from {
            secret_ref {
              name = kubernetes_secret.platform_admin.metadata[0].name
            }
          }

          security_context {
            allow_privilege_escalation = false
            capabilities {
              drop = ["ALL"]
            }
          }
        }
      }
    }
  }

  wait_for_completion = true

  timeouts {
    create = "10m"
  }

  depends_on = [kubernetes_deployment.service]
}

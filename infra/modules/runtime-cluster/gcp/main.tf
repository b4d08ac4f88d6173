# A GKE Standard cluster for one region of the platform: a VPC-native network of its own (nodes, pods and
# services ranges, Cloud NAT for egress), private nodes, Workload Identity, shielded nodes, the API
# reachable from the authorised networks only, and one node pool that autoscales between the size's bounds.

locals {
  sizes = {
    small  = { machine_type = "e2-standard-2", allocatable_cpu = 1930, allocatable_mib = 5900, min = 1, max = 3 }
    medium = { machine_type = "e2-standard-4", allocatable_cpu = 3920, allocatable_mib = 13000, min = 1, max = 6 }
    large  = { machine_type = "e2-standard-8", allocatable_cpu = 7910, allocatable_mib = 28300, min = 1, max = 12 }
  }
  size         = local.sizes[var.size]
  reserved_cpu = 1500
  reserved_mib = 3072
  # node count bounds are per zone in a regional pool: the three zones of the region
  zones = 3
}

resource "google_compute_network" "this" {
  project                 = var.project
  name                    = "maas-${var.name}"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "this" {
  project                  = var.project
  name                     = "maas-${var.name}"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = "10.48.0.0/14"
  }

  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = "10.52.0.0/20"
  }

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Nothing comes in from outside the network but Google's health checks and load balancers (the API's and
# the proxy's services), and the control plane to the nodes (GKE adds those rules itself).
resource "google_compute_firewall" "deny_ingress" {
  project   = var.project
  name      = "maas-${var.name}-deny-ingress"
  network   = google_compute_network.this.name
  direction = "INGRESS"
  priority  = 65000

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "internal" {
  project   = var.project
  name      = "maas-${var.name}-internal"
  network   = google_compute_network.this.name
  direction = "INGRESS"
  priority  = 1000

  allow {
    protocol = "all"
  }

  source_ranges = [var.subnet_cidr, "10.48.0.0/14", "10.52.0.0/20"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "this" {
  project = var.project
  name    = "maas-${var.name}"
  region  = var.region
  network = google_compute_network.this.id
}

resource "google_compute_router_nat" "this" {
  project                            = var.project
  name                               = "maas-${var.name}"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

resource "google_service_account" "nodes" {
  project      = var.project
  account_id   = "maas-${substr(var.name, 0, 20)}-nodes"
  display_name = "maas ${var.name} nodes"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset(["roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/artifactregistry.reader"])

  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "this" {
  #checkov:skip=CKV_GCP_66:Binary Authorization would refuse the images micro's Kubernetes runtime builds for tenants at deploy time (service/runtime/kubernetes); an attestor for them is not part of this module
  #checkov:skip=CKV_GCP_65:nobody uses the cluster's Kubernetes RBAC as a person: the platform and members act through micro's API and auth, the runner through its service account; Google Groups for RBAC needs a Workspace domain the module cannot assume
  project                     = var.project
  name                        = "maas-${var.name}"
  location                    = var.region
  network                     = google_compute_network.this.id
  subnetwork                  = google_compute_subnetwork.this.id
  remove_default_node_pool    = true
  initial_node_count          = 1
  enable_shielded_nodes       = true
  enable_legacy_abac          = false
  enable_intranode_visibility = true
  deletion_protection         = true

  release_channel {
    channel = "REGULAR"
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = "172.16.0.0/28"
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_cidrs
      content {
        cidr_block = cidr_blocks.value
      }
    }
  }

  workload_identity_config {
    workload_pool = "${var.project}.svc.id.goog"
  }

  network_policy {
    enabled  = true
    provider = "CALICO"
  }

  addons_config {
    network_policy_config {
      disabled = false
    }
  }

  # the default pool is removed at once; its nodes would still get the metadata server
  node_config {
    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  resource_labels = { "maas-region" = var.name }
}

resource "google_container_node_pool" "this" {
  project    = var.project
  name       = "maas-${var.name}"
  location   = var.region
  cluster    = google_container_cluster.this.name
  node_count = local.size.min

  autoscaling {
    min_node_count = local.size.min
    max_node_count = local.size.max
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = local.size.machine_type
    disk_size_gb    = 20
    disk_type       = "pd-balanced"
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    labels          = { "maas-region" = var.name }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }
  }
}

data "google_client_config" "current" {}

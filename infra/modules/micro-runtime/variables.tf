variable "name" {
  description = "The region's name on the platform (labels, the micro environment's name)."
  type        = string
}

variable "micro_image" {
  description = "micro v3's image (github.com/micro/micro at v3.19.0, its last v3 release)."
  type        = string
  default     = "micro/micro:v3.19.0"
}

variable "platform_account" {
  description = "The platform's admin account in micro's `micro` issuer (scope admin): what the platform calls every cluster's API as."
  type        = string
  default     = "platform"
}

variable "platform_secret" {
  description = "That account's secret. The caller keeps it in a cloud secret and passes it here; it goes into a Kubernetes Secret only, never into an output."
  type        = string
  sensitive   = true
}

variable "service_annotations" {
  description = "Annotations of the API's and the proxy's LoadBalancer services (the cloud's load balancer settings)."
  type        = map(string)
  default     = {}
}

variable "storage_class" {
  description = "The storage class of etcd's, NATS's, CockroachDB's and MinIO's volumes (empty: the cluster's default)."
  type        = string
  default     = ""
}

variable "api_scheme" {
  description = "How the platform reaches the API: https when the load balancer terminates TLS (its annotations name the certificate), the default."
  type        = string
  default     = "https"
}

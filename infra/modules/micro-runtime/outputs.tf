output "api_address" {
  description = "micro's HTTP API gateway (what the platform calls): <scheme>://<load balancer>:8080."
  value       = "${var.api_scheme}://${coalesce(kubernetes_service.service["api"].status[0].load_balancer[0].ingress[0].hostname, kubernetes_service.service["api"].status[0].load_balancer[0].ingress[0].ip)}:8080"
}

output "proxy_address" {
  description = "micro's gRPC proxy (what the micro CLI's MICRO_PROXY is set to): <load balancer>:8081."
  value       = "${coalesce(kubernetes_service.service["proxy"].status[0].load_balancer[0].ingress[0].hostname, kubernetes_service.service["proxy"].status[0].load_balancer[0].ingress[0].ip)}:8081"
}

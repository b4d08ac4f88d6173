# The local "cloud": a micro stand-in started as a process of its own on this machine, the way a cloud's
# composition makes a Kubernetes cluster running micro. Built-in resources only, so the whole region
# flow (plan, approval, apply, register, health, destroy) runs offline through the real binary.

locals {
  # What placement counts (the quotas of the namespaces placed there): this machine's share per size.
  capacities = {
    small  = { cpu_millicores = 8000, memory_mib = 8192 }
    medium = { cpu_millicores = 32000, memory_mib = 32768 }
    large  = { cpu_millicores = 128000, memory_mib = 131072 }
  }
}

resource "terraform_data" "cluster" {
  input = {
    name         = var.name
    state_dir    = abspath(var.state_dir)
    python       = var.python
    project_root = var.project_root
    github_url   = var.github_url
  }

  provisioner "local-exec" {
    command     = "${self.input.python} -m localcloud.standins.micro.cluster start --state-dir '${self.input.state_dir}' --github-url '${self.input.github_url}'"
    working_dir = self.input.project_root
  }

  provisioner "local-exec" {
    when        = destroy
    command     = "${self.input.python} -m localcloud.standins.micro.cluster stop --state-dir '${self.input.state_dir}'"
    working_dir = self.input.project_root
  }
}

locals {
  # Read once the cluster is up: the output of terraform_data is known only after apply, so the file is
  # read then, not at plan time.
  addresses = jsondecode(file("${terraform_data.cluster.output.state_dir}/addresses.json"))
}

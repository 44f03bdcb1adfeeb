# A Cloudflare Access policy managed by Terraform, applied with a token that cf-scoped-token makes
# for this one run:
#
#   cf-scoped-token exec --owner account --account-ids "$CF_ACCOUNT_ID" \
#     --scopes apps-and-policies:write --ttl 30m \
#     -- terraform -chdir=docs/terraform apply -var "account_id=$CF_ACCOUNT_ID"
#
# The provider reads the token from CLOUDFLARE_API_TOKEN, which exec sets for terraform alone and
# deletes at Cloudflare when terraform exits; no token is written in this file, in a tfvars file or
# in the state.

terraform {
  required_version = ">= 1.5"
  required_providers {
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 5.0"
    }
  }
}

# No api_token here: the provider takes CLOUDFLARE_API_TOKEN from the environment.
provider "cloudflare" {}

variable "account_id" {
  description = "The Cloudflare account the policy belongs to (32 hex characters)."
  type        = string
}

variable "email_domain" {
  description = "The email domain the policy lets in."
  type        = string
  default     = "example.com"
}

# A reusable policy (no application): Access applications list it by id. Creating, changing and
# deleting it needs "Access: Apps and Policies Write" on the account, the apps-and-policies:write
# scope, and nothing else.
resource "cloudflare_zero_trust_access_policy" "employees" {
  account_id       = var.account_id
  name             = "Employees"
  decision         = "allow"
  session_duration = "12h"
  include = [{
    email_domain = { domain = var.email_domain }
  }]
}

output "policy_id" {
  value = cloudflare_zero_trust_access_policy.employees.id
}

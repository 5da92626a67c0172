// Package gitlabinstance speaks to us as a self-managed GitLab instance
// does, for the tests of cloud licensing: the documents and bodies are
// GitLab's own.
package gitlabinstance

// ActivateMutation is the document GitLab's subscription portal client
// (ee/lib/gitlab/subscription_portal/clients/graphql.rb) sends to activate.
const ActivateMutation = `mutation(
  $activationCode: String!,
  $instanceIdentifier: String!,
  $automated: Boolean!,
  $gitlabVersion: String!,
  $hostname: String!
) {
  cloudActivationActivate(
    input: {
      activationCode: $activationCode,
      instanceIdentifier: $instanceIdentifier,
      automated: $automated,
      gitlabVersion: $gitlabVersion,
      hostname: $hostname
    }
  ) {
    licenseKey
    futureSubscriptions {
      cloudLicenseEnabled
      offlineCloudLicenseEnabled
      plan
      company
      email
      name
      startsAt
      expiresAt
      usersInLicenseCount
    }
    errors
  }
}
`

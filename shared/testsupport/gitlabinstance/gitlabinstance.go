// Package gitlabinstance speaks to us as a self-managed GitLab instance
// does, for the tests of cloud licensing: the documents and bodies are
// GitLab's own.
package gitlabinstance

import (
	"encoding/json"
	"time"
)

// ActivateMutation is the document GitLab's subscription portal client
// (ee/lib/gitlab/subscription_portal/clients/graphql.rb, `activate`) sends
// today: with the instance's uniqueInstanceId (Gitlab::GlobalAnonymousId)
// and selecting newSubscription.
const ActivateMutation = `mutation(
  $activationCode: String!,
  $instanceIdentifier: String!,
  $uniqueInstanceId: String!,
  $automated: Boolean!,
  $gitlabVersion: String!,
  $hostname: String!
) {
  cloudActivationActivate(
    input: {
      activationCode: $activationCode,
      instanceIdentifier: $instanceIdentifier,
      uniqueInstanceId: $uniqueInstanceId,
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
    newSubscription
    errors
  }
}
`

// ActivateMutationLegacy is the document older GitLab versions send: no
// uniqueInstanceId, no newSubscription. Instances still run them.
const ActivateMutationLegacy = `mutation(
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

// ActivateVariables are the variables `activate` sends with
// ActivateMutation, for an instance whose uuid (Gitlab::CurrentSettings.uuid)
// is instance and whose anonymous id is uniqueInstanceID.
func ActivateVariables(code, instance, uniqueInstanceID string) map[string]any {
	return map[string]any{
		"activationCode": code, "instanceIdentifier": instance, "uniqueInstanceId": uniqueInstanceID,
		"automated": false, "gitlabVersion": "17.8.0-ee", "hostname": "gitlab.example.com",
	}
}

// SeatLinkBody is the body of POST /api/v1/seat_links as
// Gitlab::SeatLinkData#as_json sends it: from the instance whose uuid is
// instance (its anonymous id "uniq-" + instance), counted at ts, holding
// license key key. users nil sends both counts as null, as an instance
// does before it has counted.
func SeatLinkBody(key, instance string, ts time.Time, users *int) []byte {
	b, _ := json.Marshal(map[string]any{
		"gitlab_version": "17.8.0-ee", "timestamp": ts.Format(time.RFC3339), "license_key": key,
		"max_historical_user_count": users, "billable_users_count": users, "hostname": "gitlab.example.com",
		"instance_id": instance, "unique_instance_id": "uniq-" + instance, "add_on_metrics": []any{},
	})
	return b
}

//! The policy file: which roles (from the installer's token) may claim with which templates, at which
//! sites, and who reads the audit trail.
//!
//! ```toml
//! [roles.installer]
//! templates = ["claimlink-demo"]
//! sites = ["lyon-3", "lyon-7"]
//!
//! [roles.auditor]
//! admin = true
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::BackendError;

/// Roles by name.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// What each role grants.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleGrant>,
}

/// What one role grants.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleGrant {
    /// Templates the role may claim with (`"*"`: any).
    pub templates: Vec<String>,
    /// Sites the role may install at (`"*"`: any).
    pub sites: Vec<String>,
    /// May read and export the audit trail and revoke any claim.
    pub admin: bool,
    /// May claim for a serial that is already provisioned (a replacement device, a factory reset).
    pub reprovision: bool,
}

/// What an installer's roles grant together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Templates (`"*"`: any).
    pub templates: Vec<String>,
    /// Sites, in policy order (`"*"`: any).
    pub sites: Vec<String>,
    /// Admin.
    pub admin: bool,
    /// Reprovision.
    pub reprovision: bool,
}

impl Policy {
    /// Reads a TOML policy file.
    pub fn load(path: &Path) -> Result<Self, BackendError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BackendError::Config(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| BackendError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses a TOML policy.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The union of what `roles` grant; unknown roles grant nothing.
    pub fn grants(&self, roles: &[String]) -> Grants {
        let mut g = Grants::default();
        for role in roles {
            let Some(r) = self.roles.get(role) else {
                continue;
            };
            for t in &r.templates {
                if !g.templates.contains(t) {
                    g.templates.push(t.clone());
                }
            }
            for s in &r.sites {
                if !g.sites.contains(s) {
                    g.sites.push(s.clone());
                }
            }
            g.admin |= r.admin;
            g.reprovision |= r.reprovision;
        }
        g
    }
}

impl Grants {
    /// Whether `template` is granted.
    pub fn allows_template(&self, template: &str) -> bool {
        self.templates.iter().any(|t| t == "*" || t == template)
    }

    /// The site a claim is for: `requested` when granted; without a request, the only granted site.
    pub fn site_for(&self, requested: Option<&str>) -> Result<String, SiteRefusal> {
        match requested {
            Some(s) if self.sites.iter().any(|g| g == "*" || g == s) => Ok(s.to_owned()),
            Some(_) => Err(SiteRefusal::NotGranted),
            None => match self.sites.as_slice() {
                [only] if only != "*" => Ok(only.clone()),
                [] => Err(SiteRefusal::NotGranted),
                _ => Err(SiteRefusal::Ambiguous),
            },
        }
    }
}

/// Why no site could be chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteRefusal {
    /// The installer has no such site.
    NotGranted,
    /// Several sites granted, none named in the request.
    Ambiguous,
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
        [roles.installer]
        templates = ["claimlink-demo"]
        sites = ["lyon-3"]
        [roles.roamer]
        templates = ["*"]
        sites = ["lyon-3", "paris-1"]
        [roles.auditor]
        admin = true
    "#;

    #[test]
    fn roles_union_and_sites() {
        let p = Policy::parse(POLICY).unwrap();
        let g = p.grants(&["installer".into(), "nobody".into()]);
        assert!(g.allows_template("claimlink-demo"));
        assert!(!g.allows_template("other"));
        assert_eq!(g.site_for(None), Ok("lyon-3".into()));
        assert_eq!(g.site_for(Some("paris-1")), Err(SiteRefusal::NotGranted));
        assert!(!g.admin);
        let g = p.grants(&["roamer".into()]);
        assert!(g.allows_template("anything"));
        assert_eq!(g.site_for(None), Err(SiteRefusal::Ambiguous));
        assert_eq!(g.site_for(Some("paris-1")), Ok("paris-1".into()));
        assert!(p.grants(&["auditor".into()]).admin);
        assert_eq!(p.grants(&[]), Grants::default());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Policy::parse("[roles.x]\ntemplate = [\"a\"]").is_err());
    }
}

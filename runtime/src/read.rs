//! Reading every region at once, with failures confined to their region.

use lbgp_aws::Error;
use lbgp_core::Region;
use lbgp_core::report::ErrorReport;

/// Reads every region at once with `read`. A region that fails is logged
/// and reported, and left out, so its routes are left as they are while
/// the other regions go on.
pub async fn read_each_region<'r, T, Fut>(
    regions: &'r [Region],
    read: impl Fn(&'r Region) -> Fut,
) -> (Vec<T>, Vec<ErrorReport>)
where
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let results = futures::future::join_all(regions.iter().map(read)).await;
    let mut views = Vec::new();
    let mut errors = Vec::new();
    for (region, result) in regions.iter().zip(results) {
        match result {
            Ok(view) => views.push(view),
            Err(e) => {
                tracing::error!(region = %region, error = %e, "region could not be read; its routes are left as they are");
                errors.push(ErrorReport {
                    region: region.to_string(),
                    resource: None,
                    error: e.to_string(),
                    account: None,
                });
            }
        }
    }
    (views, errors)
}

/// What [`read_each_region_of`] read.
#[derive(Debug)]
pub struct RegionReads<'r, T> {
    /// Each region read, with its answer.
    pub read: Vec<(&'r Region, T)>,
    /// The regions that could not be read: what depends on the resource
    /// there is frozen.
    pub unreadable: Vec<Region>,
    /// One report per unreadable region.
    pub errors: Vec<ErrorReport>,
}

/// [`read_each_region`] for a read that adds to what a region's first read
/// found (its `resource`: prefix lists, alarms…): each answer keeps its
/// region, and a failure names the resource with its whole error chain, so
/// the caller freezes only what depends on it in that region.
pub async fn read_each_region_of<'r, T, Fut>(
    regions: &'r [Region],
    resource: &str,
    read: impl Fn(&'r Region) -> Fut,
) -> RegionReads<'r, T>
where
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let results = futures::future::join_all(regions.iter().map(read)).await;
    let mut out = RegionReads {
        read: Vec::new(),
        unreadable: Vec::new(),
        errors: Vec::new(),
    };
    for (region, result) in regions.iter().zip(results) {
        match result {
            Ok(v) => out.read.push((region, v)),
            Err(e) => {
                tracing::error!(region = %region, resource, error = %e, "unreadable; what depends on it in the region is left as it is");
                out.unreadable.push(region.clone());
                out.errors.push(ErrorReport {
                    region: region.to_string(),
                    resource: Some(resource.to_owned()),
                    error: crate::error_chain(&e),
                    account: None,
                });
            }
        }
    }
    out
}

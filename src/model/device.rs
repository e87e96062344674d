//! Choosing the device the model runs on: in the browser WebGPU when it has an adapter, else the
//! CPU; natively, the backend a CLI was asked for (`--backend cpu|wgpu|cuda`).

use burn::tensor::Device;

/// The device in use and how to describe it to the person looking at the page.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    /// The burn device every tensor is created on.
    pub device: Device,
    /// True when running on WebGPU.
    pub webgpu: bool,
    /// One line for the status bar, e.g. `WebGPU (google swiftshader)` or `CPU: WebGPU unavailable (…)`.
    pub label: String,
    /// The largest storage buffer one tensor may occupy on the device
    /// (`maxStorageBufferBindingSize`: 128 MiB on SwiftShader); `None` on the CPU.
    pub max_tensor_bytes: Option<u64>,
}

impl BackendInfo {
    /// burn's CPU backend (burn-flex), with the reason it was chosen.
    pub fn cpu(reason: &str) -> Self {
        Self {
            device: Device::flex(),
            webgpu: false,
            label: format!("CPU (burn-flex): {reason}"),
            max_tensor_bytes: None,
        }
    }
}

/// Which backend the page runs on: the page's `?backend=` and its backend control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum BackendChoice {
    /// The fastest the browser offers: WebGPU on a real adapter, the CPU where the adapter is a
    /// software fallback (SwiftShader runs a forward ~70× slower than burn-flex) or missing.
    #[default]
    Auto,
    /// WebGPU whenever the browser has an adapter, a software fallback included.
    WebGpu,
    /// burn-flex on the CPU, even where WebGPU is there.
    Cpu,
}

impl BackendChoice {
    /// Every choice, in the order the page's control lists them.
    pub const ALL: [BackendChoice; 3] = [Self::Auto, Self::WebGpu, Self::Cpu];

    /// The choice a `?backend=` value names; anything else (or nothing) is `Auto`.
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("webgpu") => Self::WebGpu,
            Some("cpu") => Self::Cpu,
            _ => Self::Auto,
        }
    }

    /// The `?backend=` value that selects this choice (`None` for `Auto`, the default).
    pub fn query_value(self) -> Option<&'static str> {
        match self {
            Self::Auto => None,
            Self::WebGpu => Some("webgpu"),
            Self::Cpu => Some("cpu"),
        }
    }

    /// The choice in words, for the page's control.
    pub fn words(self) -> &'static str {
        match self {
            Self::Auto => "Fastest (automatic)",
            Self::WebGpu => "WebGPU",
            Self::Cpu => "CPU",
        }
    }
}

/// What the browser says about its WebGPU adapter before any device is made on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The browser's words for it (`google swiftshader …`).
    pub description: String,
    /// `isFallbackAdapter`: a software implementation, far slower than burn-flex.
    pub fallback: bool,
}

/// The CPU's reason when `choice` skips an adapter the browser offers; `None` to try WebGPU.
pub fn cpu_instead_of(choice: BackendChoice, adapter: Option<&AdapterSummary>) -> Option<String> {
    match (choice, adapter) {
        (BackendChoice::Cpu, _) => Some("chosen in the address (?backend=cpu)".into()),
        (BackendChoice::Auto, Some(adapter)) if adapter.fallback => Some(format!(
            "faster than this browser's WebGPU adapter, a software fallback ({}); \
             ?backend=webgpu runs on it anyway",
            adapter.description
        )),
        _ => None,
    }
}

/// Asks the browser for a WebGPU device and falls back to the CPU when there is none, or when
/// `cpu_reason` (from [`cpu_instead_of`]) says to skip it.
#[cfg(target_arch = "wasm32")]
pub async fn init_browser_device(cpu_reason: Option<String>) -> BackendInfo {
    if let Some(reason) = cpu_reason {
        return BackendInfo::cpu(&reason);
    }
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            let details: Vec<&str> = [
                info.name.as_str(),
                info.driver.as_str(),
                info.driver_info.as_str(),
            ]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect();
            let details = if details.is_empty() {
                format!("{:?} {:?}", info.backend, info.device_type)
            } else {
                details.join(" ")
            };
            let limits = setup.device.limits();
            BackendInfo {
                device,
                webgpu: true,
                label: format!("WebGPU ({details})"),
                max_tensor_bytes: Some(
                    limits
                        .max_storage_buffer_binding_size
                        .min(limits.max_buffer_size),
                ),
            }
        }
        Err(burn::tensor::wgpu::WgpuInitError::AdapterUnavailable { .. }) => {
            BackendInfo::cpu("this browser offers no WebGPU adapter")
        }
        Err(error) => BackendInfo::cpu(&format!("WebGPU failed to start ({error})")),
    }
}

/// The backends the native CLIs run on (`--backend`).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NativeBackend {
    /// burn-flex on the CPU.
    #[default]
    Cpu,
    /// burn's wgpu runtime on whichever of Vulkan, Metal or DX12 the machine has (Mesa's
    /// lavapipe, a software Vulkan, where there is no GPU).
    Wgpu,
    /// burn's CUDA runtime, in a build with the `cuda` feature.
    Cuda,
}

/// The device a native CLI runs on for `backend`, with the backend in words for its output and
/// its files' provenance (`the CPU (burn-flex)`, `wgpu (Vulkan: llvmpipe …)`, `CUDA (…)`).
///
/// Fails, in one line that names the fix, when the backend cannot start: no wgpu adapter, no
/// CUDA in this build or no NVIDIA driver.
#[cfg(not(target_arch = "wasm32"))]
pub fn native_device(backend: NativeBackend) -> Result<(Device, String), String> {
    match backend {
        NativeBackend::Cpu => Ok((Device::flex(), "the CPU (burn-flex)".into())),
        NativeBackend::Wgpu => native_wgpu(),
        NativeBackend::Cuda => native_cuda(),
    }
}

/// burn's wgpu runtime on the default adapter, initialised here so that a missing adapter is
/// an error rather than a panic at the first tensor.
///
/// The graphics API is pinned where the platform has one worth having (Vulkan; Metal on Apple
/// machines): left to itself the runtime falls back to OpenGL, which on a machine without a
/// Vulkan driver quietly runs on Mesa's llvmpipe GL instead of saying what to install.
/// Windows keeps the runtime's own order (Vulkan, DX12, then OpenGL).
#[cfg(not(target_arch = "wasm32"))]
fn native_wgpu() -> Result<(Device, String), String> {
    use burn::tensor::wgpu::WgpuBackend;
    let api = if cfg!(target_vendor = "apple") {
        WgpuBackend::Metal
    } else if cfg!(windows) {
        WgpuBackend::Auto
    } else {
        WgpuBackend::Vulkan
    };
    match Device::wgpu_options().graphics_api(api).init_with_setup() {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            let details: Vec<&str> = [info.name.as_str(), info.driver_info.as_str()]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect();
            let label = format!("wgpu ({:?}: {})", info.backend, details.join(", "));
            Ok((device, label))
        }
        Err(error @ burn::tensor::wgpu::WgpuInitError::AdapterUnavailable { .. }) => Err(format!(
            "no Vulkan/Metal adapter: install mesa-vulkan-drivers for lavapipe, a software Vulkan ({error})"
        )),
        Err(error) => Err(format!("wgpu failed to start: {error}")),
    }
}

/// burn's CUDA runtime on GPU 0.
#[cfg(all(not(target_arch = "wasm32"), feature = "cuda"))]
fn native_cuda() -> Result<(Device, String), String> {
    // burn-cuda loads the driver on the first tensor and panics without one: look for the
    // driver first (Linux lists it under /proc), so that its absence is said in words.
    let driver = std::path::Path::new("/proc/driver/nvidia/version");
    if cfg!(target_os = "linux") && !driver.exists() {
        return Err("no NVIDIA driver (no /proc/driver/nvidia/version): --backend cuda needs an NVIDIA GPU and its driver".into());
    }
    let model = std::fs::read_dir("/proc/driver/nvidia/gpus")
        .ok()
        .and_then(|mut gpus| gpus.next())
        .and_then(|gpu| std::fs::read_to_string(gpu.ok()?.path().join("information")).ok())
        .and_then(|information| {
            information.lines().find_map(|line| {
                line.strip_prefix("Model:")
                    .map(|model| model.trim().to_string())
            })
        });
    let label = match model {
        Some(model) => format!("CUDA ({model})"),
        None => "CUDA (GPU 0)".into(),
    };
    Ok((Device::cuda(0), label))
}

/// Without the `cuda` feature there is no CUDA runtime to start.
#[cfg(all(not(target_arch = "wasm32"), not(feature = "cuda")))]
fn native_cuda() -> Result<(Device, String), String> {
    Err("this build has no CUDA backend: rebuild with `--features cuda` (cargo build --release --features cuda)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(fallback: bool) -> AdapterSummary {
        AdapterSummary {
            description: "google swiftshader".into(),
            fallback,
        }
    }

    #[test]
    fn the_address_names_each_choice_and_anything_else_is_automatic() {
        for choice in BackendChoice::ALL {
            assert_eq!(BackendChoice::from_query(choice.query_value()), choice);
        }
        assert_eq!(
            BackendChoice::from_query(Some("WebGPU")),
            BackendChoice::Auto
        );
    }

    #[test]
    fn by_default_a_fallback_adapter_loses_to_the_cpu_and_says_why() {
        let reason = cpu_instead_of(BackendChoice::Auto, Some(&adapter(true))).unwrap();
        assert!(
            reason.contains("software fallback (google swiftshader)"),
            "{reason}"
        );
        assert!(reason.contains("?backend=webgpu"), "{reason}");
        assert_eq!(
            cpu_instead_of(BackendChoice::Auto, Some(&adapter(false))),
            None
        );
        // No adapter: WebGPU's own start fails and names that.
        assert_eq!(cpu_instead_of(BackendChoice::Auto, None), None);
    }

    #[test]
    fn an_explicit_choice_wins_over_the_adapter() {
        assert_eq!(
            cpu_instead_of(BackendChoice::WebGpu, Some(&adapter(true))),
            None
        );
        let reason = cpu_instead_of(BackendChoice::Cpu, Some(&adapter(false))).unwrap();
        assert!(reason.contains("?backend=cpu"), "{reason}");
    }
}

//! Choosing the device the model runs on: WebGPU when the browser has an adapter, else the CPU.

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

/// Asks the browser for a WebGPU adapter and falls back to the CPU when there is none.
///
/// `force_cpu` skips WebGPU (the page's `?backend=cpu`).
#[cfg(target_arch = "wasm32")]
pub async fn init_browser_device(force_cpu: bool) -> BackendInfo {
    if force_cpu {
        return BackendInfo::cpu("chosen in the address (?backend=cpu)");
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

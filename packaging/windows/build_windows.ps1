# Build HistoGuard for Windows, on Windows (PyInstaller cannot cross-compile):
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build_windows.ps1 [-Edition diagnose|full]
# Needs Python 3.10+ (py launcher) and NSIS 3 (makensis on PATH). Makes dist\histoguard (the folder),
# dist\HistoGuard-VERSION-EDITION-windows-portable.zip (unzip and run, no admin rights) and
# dist\HistoGuard-VERSION-EDITION-setup.exe (per-user installer, no admin rights).
param([ValidateSet("diagnose", "full")] [string] $Edition = "diagnose")
$ErrorActionPreference = "Stop"
$Root = (Resolve-Path "$PSScriptRoot\..\..").Path
Set-Location $Root
$Venv = "build\venv-$Edition"
if (-not (Test-Path "$Venv\Scripts\python.exe")) { py -3 -m venv $Venv }
if ($Edition -eq "diagnose") {
    & "$Venv\Scripts\pip" install -q -r packaging\requirements-diagnose.txt
} else {
    & "$Venv\Scripts\pip" install -q -r packaging\requirements-build.txt .
}
$Version = & "$Venv\Scripts\python" -c "import sys; sys.path.insert(0, '.'); import engine; print(engine.__version__)"
$env:HISTOGUARD_EDITION = $Edition
& "$Venv\Scripts\pyinstaller" --noconfirm --clean --log-level WARN --workpath "build\pyinstaller-$Edition" --distpath dist packaging\histoguard.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
Set-Content -Path dist\histoguard\EDITION -Value $Edition
$env:QT_QPA_PLATFORM = "offscreen"
& dist\histoguard\histoguard.exe --self-test
if ($LASTEXITCODE -ne 0) { throw "the frozen app's self-test failed" }
Remove-Item Env:QT_QPA_PLATFORM
$Zip = "dist\HistoGuard-$Version-$Edition-windows-portable.zip"
if (Test-Path $Zip) { Remove-Item $Zip }
Compress-Archive -Path dist\histoguard -DestinationPath $Zip
& "$Venv\Scripts\python" -c "from PIL import Image; Image.open('resources/histoguard.png').save('build/histoguard.ico', sizes=[(16, 16), (32, 32), (48, 48), (256, 256)])"
& makensis /V2 "/DVERSION=$Version" "/DEDITION=$Edition" "/DICON=$Root\build\histoguard.ico" packaging\windows\histoguard.nsi
if ($LASTEXITCODE -ne 0) { throw "makensis failed" }
Write-Host "folder: dist\histoguard; portable: $Zip; installer: dist\HistoGuard-$Version-$Edition-setup.exe"

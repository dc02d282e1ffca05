; HistoGuard installer for Windows (NSIS 3). Built by packaging/windows/build_windows.ps1 from the
; PyInstaller folder dist\histoguard; by hand: makensis /DVERSION=0.1.0 /DEDITION=diagnose packaging\windows\histoguard.nsi
;
; Installs for the current user only (no admin rights: lab workstations are often locked down) into
; %LOCALAPPDATA%\Programs\HistoGuard, with Start-menu shortcuts and an uninstaller, then runs the
; installed app's self-test. User data (run folders, %LOCALAPPDATA%\histoguard caches) is never removed.
Unicode true
!ifndef VERSION
  !define VERSION "0.1.0"
!endif
!ifndef EDITION
  !define EDITION "diagnose"
!endif
!ifndef SOURCE
  !define SOURCE "..\..\dist\histoguard"
!endif
!ifndef OUTFILE
  !define OUTFILE "..\..\dist\HistoGuard-${VERSION}-${EDITION}-setup.exe"
!endif
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\HistoGuard"

Name "HistoGuard ${VERSION} (${EDITION} edition)"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\HistoGuard"
InstallDirRegKey HKCU "Software\HistoGuard" "InstallDir"
RequestExecutionLevel user
SetCompressor /SOLID lzma
!ifdef ICON
  Icon "${ICON}"
  UninstallIcon "${ICON}"
!endif

!include "MUI2.nsh"
!define MUI_FINISHPAGE_RUN "$INSTDIR\HistoGuard-app.exe"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Section "HistoGuard" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  File /r "${SOURCE}\*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateDirectory "$SMPROGRAMS\HistoGuard"
  CreateShortcut "$SMPROGRAMS\HistoGuard\HistoGuard.lnk" "$INSTDIR\HistoGuard-app.exe"
  CreateShortcut "$SMPROGRAMS\HistoGuard\Uninstall HistoGuard.lnk" "$INSTDIR\uninstall.exe"
  WriteRegStr HKCU "Software\HistoGuard" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "HistoGuard (${EDITION} edition)"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "HistoGuard developers"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\HistoGuard-app.exe"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  ; the installed app checks itself (offscreen: no window flashes up); a failure is shown, not hidden
  DetailPrint "Running the HistoGuard self-test..."
  nsExec::ExecToLog '"$INSTDIR\histoguard.exe" --self-test'
  Pop $0
  StrCmp $0 "0" selftest_ok
    MessageBox MB_ICONEXCLAMATION "HistoGuard was installed but its self-test failed (exit code $0). \
      Run 'histoguard.exe --self-test' in $INSTDIR to see why."
  selftest_ok:
SectionEnd

Section "Uninstall"
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\histoguard.exe"
  Delete "$INSTDIR\HistoGuard-app.exe"
  Delete "$INSTDIR\EDITION"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  RMDir /r "$SMPROGRAMS\HistoGuard"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\HistoGuard"
SectionEnd
